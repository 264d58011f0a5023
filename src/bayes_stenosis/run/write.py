"""Write a :class:`~bayes_stenosis.run.fit.Fit` as a run folder, atomically; and ``run.fit``: fit and
write in one call.

Files made by higher layers (the frequentist reproduction, plots, the report) are written into the
same temporary folder through callbacks, so that the run folder appears complete or not at all;
:func:`bayes_stenosis.workflow.fit` passes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import arviz as az
import pandas as pd

from bayes_stenosis.errors import ConvergenceError, InputError
from bayes_stenosis.inference import phases
from bayes_stenosis.run.fit import Fit, fit_study, load_model_spec
from bayes_stenosis.run.folder import atomic_run_folder, write_json
from bayes_stenosis.run.idata import PRIOR_DELTA_FILE, prior_delta_dataset
from bayes_stenosis.run.inputs import write_run_inputs
from bayes_stenosis.run.load import RunFolder
from bayes_stenosis.run.lock import destination_lock
from bayes_stenosis.run.manifest import run_manifest
from bayes_stenosis.run.paths import check_output_folder, make_parents
from bayes_stenosis.spec import ModelSpec
from bayes_stenosis.study import Study, load_study


@dataclass
class RunResult:
    """What ``bayes-stenosis fit`` reports back: the folder written and the headline tables."""

    folder: Path
    decisions: pd.DataFrame
    contrasts: pd.DataFrame
    evidence: pd.DataFrame
    verdict_line: str
    verdict_status: str
    timings: dict[str, float]
    statement_checks: pd.DataFrame | None = None
    # the sweep of the same study and spec beside the run (analyses.matching_robustness), if one exists
    robustness: pd.DataFrame | None = None
    robustness_fits: int = 0

    @cached_property
    def idata(self) -> az.InferenceData:
        """The run's draws (``posterior.nc``), read from the published folder and checked, when first asked for."""
        return RunFolder(self.folder).idata


def default_run_name(spec_name: str, prior_set: str, seed: int) -> str:
    return f"{spec_name}-{prior_set}-seed{seed}"


def parse_margins(items: list[str] | None) -> dict[str, float]:
    """``["ODI=8", "VAS=10"]`` -> ``{"ODI": 8.0, "VAS": 10.0}``."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise InputError(None, f"--margin expects OUTCOME=VALUE (got {item!r})") from None
    return out


def run_destination(fit: Fit, out: str | Path, run_name: str | None) -> Path:
    name = run_name or default_run_name(fit.spec.name, fit.prior_set, fit.settings.seed)
    return Path(out) / fit.study.id / name


def write_run(
    fit: Fit,
    out: str | Path = "outputs",
    *,
    run_name: str | None = None,
    overwrite: bool = False,
    extra_files: Callable[[Path, Study, ModelSpec], None] | None = None,
    figures: Callable[[Path], None] | None = None,
    report: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``fit`` to the run folder ``out/<study>/<run-name>/`` (complete, or not at all).

    ``extra_files(folder, study, spec)`` runs before the manifest is written, ``figures(folder)`` and
    ``report(folder)`` after it (they read it); each gets the temporary folder of the run.

    Returns
    -------
    The run folder.

    Raises
    ------
    InputError
        The run folder cannot be written, or exists and ``overwrite`` is false (the new run is then
        discarded; an existing run is never replaced without ``overwrite``).
    DestinationLockedError
        Another live process is writing the same run folder.
    """
    if fit.results is None:
        raise ValueError("write_run needs a fit made with full_results=True (a run folder holds every result)")
    t_write = time.perf_counter()
    destination = run_destination(fit, out, run_name)
    timings = dict(fit.timings)
    with atomic_run_folder(destination, overwrite=overwrite) as tmp:
        _write_fit_files(tmp, fit, timings)
        if extra_files is not None:  # files of higher layers that the manifest and report refer to
            extra_files(tmp, fit.study, fit.spec)
        manifest = run_manifest(fit, timings)
        write_json(tmp / "manifest.json", manifest)
        if figures is not None:
            _timed(figures, tmp, timings, "plots")
        timings["total"] = timings.get("fit_total", 0.0) + time.perf_counter() - t_write
        manifest["timings_seconds"] = timings
        write_json(tmp / "manifest.json", manifest)
        if report is not None:
            _timed(report, tmp, timings, "report")
            manifest["timings_seconds"] = timings
            write_json(tmp / "manifest.json", manifest)
    fit.timings.update(timings)
    return destination


def _write_fit_files(tmp: Path, fit: Fit, timings: dict[str, float]) -> None:
    """The files of the fit itself: draws (netCDF), diagnostics, inputs, evidence, results and checks."""
    start = time.perf_counter()
    # uncompressed: zlib gains ~4 % on draws (random mantissas) and wrote 7x slower (28 s of a 10,000-patient fit)
    fit.idata.to_netcdf(str(tmp / "posterior.nc"), compress=False)
    # the decision table's prior column comes from these draws; plots draw the prior's density from them
    prior_delta_dataset(fit).to_netcdf(tmp / PRIOR_DELTA_FILE)
    timings["write_netcdf"] = time.perf_counter() - start
    fit.parameters.to_csv(tmp / "diagnostics.csv", index=False)
    fit.sampler_stats.to_csv(tmp / "diagnostics_sampler.csv", index=False)
    fit.decision_diagnostics.to_csv(tmp / "diagnostics_decisions.csv", index=False)
    write_run_inputs(tmp, fit.study, fit.spec_path, fit.inputs)
    # the spec as validated (a spec that extends another, or one built in memory, in full)
    (tmp / "inputs" / "spec.json").write_text(fit.spec.model_dump_json(indent=2) + "\n")
    fit.inputs.evidence_by_cell.to_csv(tmp / "evidence.csv", index=False)
    if fit.inputs.ipd is not None:  # missing follow-up values per arm x time x outcome
        fit.inputs.ipd.missing.to_csv(tmp / "missing_ipd.csv", index=False)
    fit.results.write(tmp)
    if fit.statement_checks is not None:
        fit.statement_checks.to_csv(tmp / "statement_checks.csv", index=False)


def _timed(write: Callable[[Path], None], tmp: Path, timings: dict[str, float], name: str) -> None:
    """Run ``write(tmp)`` and record its seconds as ``timings[name]``."""
    start = time.perf_counter()
    write(tmp)
    timings[name] = time.perf_counter() - start


def fit(
    study: str | Path | Study = "farpour2022",
    *,
    spec: str | Path | ModelSpec = "default",
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
    extra_files: Callable[[Path, Study, ModelSpec], None] | None = None,
    figures: Callable[[Path], None] | None = None,
    report: Callable[[Path], None] | None = None,
    background_prior: bool = True,
) -> RunResult:
    """:func:`fit_study` then :func:`write_run`, with the run folder checked and locked before sampling.

    The prior draws are made in a parallel process while the posterior is sampled (``background_prior``,
    :func:`fit_study`): the same numbers, sooner.

    Raises
    ------
    InputError
        Bad study, spec or options, an output path that cannot be written, or an existing run folder
        without ``overwrite``; before sampling.
    DestinationLockedError
        Another live process is writing the same run folder; before sampling.
    ConvergenceError
        With ``strict=True``, when the diagnostics verdict is "fail" (the run folder is still
        written, so the failure can be inspected).
    """
    loaded = study if isinstance(study, Study) else load_study(study)
    name, destination = _checked_destination(loaded, spec, prior_set, seed, out, run_name, overwrite)
    # held from before sampling to the publish: a second writer of this run is refused at once
    with destination_lock(destination):
        fitted = fit_study(
            loaded,
            spec=spec,
            prior_set=prior_set,
            seed=seed,
            chains=chains,
            draws=draws,
            tune=tune,
            sampler=sampler,
            margins=margins,
            progress=progress,
            status=status,
            background_prior=background_prior,
        )
        phase = phases(status)
        folder = write_run(
            fitted,
            out,
            run_name=name,
            overwrite=overwrite,
            extra_files=extra_files,
            figures=_in_phase(phase, "drawing the plots", figures),
            report=_in_phase(phase, "writing the report", report),
        )
    if strict and fitted.verdict.status == "fail":
        raise ConvergenceError(f"{fitted.verdict.line()}; run folder written to {folder}")
    return _run_result(folder, fitted)


def _in_phase(phase: Callable[[str], object], message: str, step: Callable[[Path], None] | None):
    """``step`` run as a phase of the command (a status line with its duration), or None."""
    if step is None:
        return None

    def run_step(folder: Path) -> None:
        with phase(message):
            step(folder)

    return run_step


def _run_result(folder: Path, fitted: Fit) -> RunResult:
    """What ``bayes-stenosis fit`` reports of a written run."""
    return RunResult(
        folder=folder,
        decisions=fitted.decisions,
        contrasts=fitted.contrasts,
        evidence=fitted.inputs.evidence_by_cell,
        verdict_line=fitted.verdict.line(),
        verdict_status=fitted.verdict.status,
        timings=fitted.timings,
        statement_checks=fitted.statement_checks,
    )


def _checked_destination(
    study: Study,
    spec: str | Path | ModelSpec,
    prior_set: str | None,
    seed: int | None,
    out: str | Path,
    run_name: str | None,
    overwrite: bool,
) -> tuple[str, Path]:
    """The run's name and folder (``out/<study>/<run-name>``), checked writable and its parents made,
    before any sampling."""
    model_spec, _, _ = load_model_spec(spec)
    name = run_name or default_run_name(
        model_spec.name, prior_set or model_spec.prior.default, model_spec.sampler.seed if seed is None else seed
    )
    destination = check_output_folder(Path(out) / study.id / name, overwrite=overwrite)
    make_parents(destination, "run folder")
    return name, destination
