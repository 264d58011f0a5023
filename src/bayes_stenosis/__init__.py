"""bayes-stenosis: Bayesian reanalysis of two-arm repeated-measures trials.

Layers, bottom to top: ``study`` (data and validation) -> ``model`` (PyMC builders) ->
``inference`` (sampling) -> ``decisions`` (equivalence probabilities and summaries) ->
``outputs`` / ``plots`` / ``report`` (files) -> ``cli``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bayes-stenosis")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
