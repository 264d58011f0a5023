"""bayes-stenosis: Bayesian reanalysis of two-arm repeated-measures trials.

The public API, importable from the top (loaded on first use, so that ``bayes-stenosis --version``
does not import PyMC)::

    import bayes_stenosis as bs

    fit = bs.fit_study("farpour2022", seed=1)  # in memory: fit.idata, fit.decisions, fit.verdict
    folder = bs.write_run(fit, "outputs")  # a run folder, as `bayes-stenosis fit` writes it
    run = bs.load_run(folder)  # run.manifest, run.decisions, run.idata
    syn = bs.synthesize([folder, other_folder], "VAS", 6)  # random-effects synthesis of their likelihoods
    plan = bs.design_analysis(folder, n_per_arm=[40, 80], trials=1000)  # assurance of a confirmatory trial

Layers, bottom to top, are described in ARCHITECTURE.md.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bayes-stenosis")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

#: public name -> the module that defines it
_PUBLIC = {
    "fit_study": "bayes_stenosis.run",
    "write_run": "bayes_stenosis.run",
    "load_run": "bayes_stenosis.run",
    "Fit": "bayes_stenosis.run",
    "RunFolder": "bayes_stenosis.run",
    "load_study": "bayes_stenosis.study",
    "Study": "bayes_stenosis.study",
    "load_spec": "bayes_stenosis.spec",
    "ModelSpec": "bayes_stenosis.spec",
    "synthesize": "bayes_stenosis.analyses",
    "run_synthesis": "bayes_stenosis.analyses",
    "synthesize_multivariate": "bayes_stenosis.analyses",
    "design_analysis": "bayes_stenosis.design",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'bayes_stenosis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
