"""What ``bayes-stenosis fit`` does: fit and write a run folder, then its reproduction, plots and report.

The run layer fits and writes the folder; the reproduction of the published tests (``analyses``), the
plots and the report (``outputs``) sit above it, so they are passed to it as callbacks that write into
the run's temporary folder before it is renamed into place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from bayes_stenosis.analyses import matching_robustness, write_reproduce, write_sweep_plan
from bayes_stenosis.outputs import render_report
from bayes_stenosis.outputs.plots import write_plots
from bayes_stenosis.run import RunFolder, RunResult
from bayes_stenosis.run import fit as fit_and_write
from bayes_stenosis.spec import ModelSpec
from bayes_stenosis.study import Study


def reproduce_and_plan(folder: Path, study: Study, spec: ModelSpec) -> None:
    """The run's files from the analyses layer: the reproduction of the published tests, and the plan of
    the sensitivity sweep (not the sweep: tens of fits; the report says what it would show and cost)."""
    write_reproduce(folder, study, spec)
    write_sweep_plan(folder, study, spec)


def fit(
    study: str | Path = "farpour2022",
    *,
    spec: str | Path = "default",
    prior_set: str | None = None,
    seed: int | None = None,
    chains: int | None = None,
    draws: int | None = None,
    tune: int | None = None,
    sampler: str | None = None,
    out: str | Path = "outputs",
    run_name: str | None = None,
    overwrite: bool = False,
    strict: bool = False,
    margins: dict[str, float] | None = None,
    progress: bool = True,
    status: Callable[[str], object] | None = None,
    plots: bool = True,
    report: bool = True,
) -> RunResult:
    """Fit a study and write the complete run folder ``out/<study>/<run-name>/``.

    The arguments are those of :func:`bayes_stenosis.run.fit`; ``plots`` and ``report`` add the
    figures and the self-contained ``report.html``. The reproduction of the published tests
    (``reproduce.csv`` / ``.md``, cheap) and the plan of the sensitivity sweep (``sensitivity_plan.json``: its
    fits, not run) are always written: the report includes them. When a sensitivity
    sweep of the same study and spec sits beside the run (``out/<study>/sensitivity/``), its robustness
    table comes back with the result (``RunResult.robustness``).

    Raises
    ------
    InputError
        Bad study, spec or options; raised before anything is written.
    ConvergenceError
        With ``strict=True``, when the diagnostics verdict is "fail" (the run folder is still written).
    """
    result = fit_and_write(
        study,
        spec=spec,
        prior_set=prior_set,
        seed=seed,
        chains=chains,
        draws=draws,
        tune=tune,
        sampler=sampler,
        out=out,
        run_name=run_name,
        overwrite=overwrite,
        strict=strict,
        margins=margins,
        progress=progress,
        status=status,
        extra_files=reproduce_and_plan,
        **_figures_and_report(plots, report),
    )
    found = matching_robustness(result.folder)
    if found is None:
        return result
    robust, sweep = found
    return dataclasses.replace(result, robustness=robust, robustness_fits=int(sweep.get("n_fits", 0)))


def _figures_and_report(plots: bool, report: bool) -> dict:
    """``write_run``'s plot and report steps, reading one staged run folder: the report reuses the draws
    the plots read (opening the flagship's ``posterior.nc`` again cost 1.6 s) with the manifest read afresh."""
    staged: dict[Path, RunFolder] = {}

    def draw(folder: Path) -> None:
        staged[folder] = RunFolder(folder, staging=True)
        write_plots(staged[folder])

    def write_report(folder: Path) -> None:
        run = staged[folder].reread() if folder in staged else folder
        render_report(run, make_plots=plots, staging=True)

    return {"figures": draw if plots else None, "report": write_report if report else None}
