"""``run_sensitivity``: check and lock the output folder, fit every configuration of the grid through
:func:`bayes_stenosis.run.fit_study` with one compile cache, tabulate and publish the folder."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_stenosis import __version__
from bayes_stenosis import decisions as dec
from bayes_stenosis.analyses.sensitivity.configs import FitConfig, grid, margin_sets
from bayes_stenosis.analyses.sensitivity.figure import plot_sensitivity
from bayes_stenosis.analyses.sensitivity.tables import (
    fit_summary,
    margin_set_table,
    robustness_table,
    with_reference_decisions,
)
from bayes_stenosis.errors import InputError
from bayes_stenosis.inference import CompileCache, SamplerSettings
from bayes_stenosis.model import ModelInputs, build_model, prepare_inputs, resolve_prior
from bayes_stenosis.outputs.sweep import SWEEP_PLAN_FILE
from bayes_stenosis.provenance import provenance
from bayes_stenosis.run import (
    atomic_run_folder,
    check_output_folder,
    destination_lock,
    fit_study,
    make_parents,
    write_json,
)
from bayes_stenosis.spec import ModelSpec, ResolvedPrior, load_spec
from bayes_stenosis.study import Study, load_study

__all__ = [
    "SensitivityResult",
    "SweepPlan",
    "fit_grid",
    "plan_sweep",
    "run_sensitivity",
    "sweep",
    "sweep_manifest",
    "write_sweep_plan",
]


@dataclass
class SensitivityResult:
    folder: Path
    table: pd.DataFrame
    robustness: pd.DataFrame  # per cell and joint row: P(equiv) range over the fits, study margins
    fits: pd.DataFrame  # one row per fit: configuration, diagnostics, timings
    flips: pd.DataFrame  # cell rows whose decision differs from the reference configuration
    timings: dict[str, float]
    manifest: dict = field(default_factory=dict)


def run_sensitivity(
    study: str | Path = "farpour2022",
    *,
    spec: str | Path = "default",
    seed: int | None = None,
    chains: int | None = None,
    draws: int | None = None,
    tune: int | None = None,
    out: str | Path = "outputs",
    overwrite: bool = False,
    plots: bool = True,
    status: Callable[[str], object] | None = None,
) -> SensitivityResult:
    """Fit every (prior set, correlation) pair of the spec's grid; decide under every margin set.

    Each fit is :func:`bayes_stenosis.run.fit_study` (the pipeline of ``bayes-stenosis fit``), with one
    :class:`~bayes_stenosis.inference.CompileCache` across the sweep: one compile per model structure.
    Writes ``out/<study>/sensitivity/`` atomically (``sensitivity.csv``, ``fits.csv``,
    ``sensitivity.png``, ``manifest.json`` with the checksums); an existing folder is kept unless
    ``overwrite``. The folder's lock is held from before the first fit.

    Raises
    ------
    InputError
        Bad study or spec, a spec without ``[sensitivity]``, an output folder that cannot be written
        or exists (without ``overwrite``); raised before any sampling.
    DestinationLockedError
        Another live process is writing the same sensitivity folder; before any sampling.
    """
    say = status or (lambda _msg: None)
    t_start = time.perf_counter()
    loaded = load_study(study)
    model_spec, spec_sha = load_spec(spec)
    if model_spec.sensitivity is None:
        raise InputError(spec, "the model spec has no [sensitivity] table (see models/default.toml)")
    settings = SamplerSettings.from_spec(model_spec.sampler, seed=seed, chains=chains, draws=draws, tune=tune)
    if settings.name != "nutpie":
        raise InputError(spec, "the sensitivity sweep needs the nutpie sampler (compile once, swap data)")
    what = "sensitivity folder"
    destination = check_output_folder(Path(out) / loaded.id / "sensitivity", overwrite=overwrite, what=what)
    make_parents(destination, what)
    # held from before the first fit to the publish: a second sweep into this folder is refused at once
    with destination_lock(destination, what=what):
        return sweep(
            loaded,
            (model_spec, spec, spec_sha),
            settings,
            destination,
            overwrite=overwrite,
            plots=plots,
            say=say,
            t_start=t_start,
        )


@dataclass
class SweepPlan:
    """What a sweep fits: the study's model inputs, its margin sets, the prior of each prior set, whether
    any likelihood term depends on rho, the fits of the grid and the reference one."""

    inputs: ModelInputs
    margin_sets: dict[str, dict[str, tuple[float, str]]]
    priors: dict[str, ResolvedPrior]
    uses_rho: bool
    configs: list[FitConfig]
    reference: FitConfig


def plan_sweep(loaded: Study, model_spec: ModelSpec) -> SweepPlan:
    """The grid of the spec for this study (one model is built, not sampled, to see which terms it has)."""
    sens = model_spec.sensitivity
    inputs = prepare_inputs(loaded, model_spec)
    msets = margin_sets(loaded, model_spec)
    priors = {p: resolve_prior(model_spec, p, inputs) for p in sens.prior_sets}
    # does any likelihood term depend on rho? (contrast-only studies: no) -> then one assumption only
    probe = build_model(inputs, model_spec, priors[sens.prior_sets[0]]).named_vars
    uses_rho = "rho" in probe
    configs, reference = grid(model_spec, uses_rho, uses_thresholds="threshold_se_factor" in probe)
    return SweepPlan(inputs, msets, priors, uses_rho, configs, reference)


def write_sweep_plan(folder: Path, loaded: Study, model_spec: ModelSpec) -> dict:
    """``sensitivity_plan.json`` in a run folder: the fits the spec's sweep would make for this study (their
    number, labels and the axes they vary), so that the report and ``summarize`` can say what a missing sweep
    would show and cost. Plans only (one model built, none sampled: about a second)."""
    plan = plan_sweep(loaded, model_spec)
    axes = []
    for name in ("prior_set", "correlation", "pooling", "between_test", "followup_sd_ratio", "analysed_fraction"):
        values = list(dict.fromkeys(str(getattr(c, name)) for c in plan.configs))
        if len(values) > 1:
            axes.append({"axis": name, "values": values})
    content = {
        "n_fits": len(plan.configs),
        "reference": plan.reference.label,
        "axes": axes,
        "configurations": [c.label for c in plan.configs],
    }
    write_json(folder / SWEEP_PLAN_FILE, content)
    return content


def sweep(
    loaded: Study,
    specs: tuple[ModelSpec, str | Path, str],
    settings: SamplerSettings,
    destination: Path,
    *,
    overwrite: bool,
    plots: bool,
    say: Callable[[str], object],
    t_start: float,
) -> SensitivityResult:
    """The body of :func:`run_sensitivity` once its output folder is checked and locked; ``specs`` is
    (the validated spec, the name or path given, its SHA-256)."""
    model_spec = specs[0]
    plan = plan_sweep(loaded, model_spec)
    timings: dict[str, float] = {"prepare": time.perf_counter() - t_start, "sampling": 0.0, "prior_draws": 0.0}

    cache = CompileCache(settings)
    fit_rows, table_parts = fit_grid(loaded, model_spec, plan, settings, cache, timings, say)
    timings["compile"] = cache.compile_seconds

    result = with_reference_decisions(pd.concat(table_parts, ignore_index=True), loaded.id, plan.reference.label)
    fits = pd.DataFrame(fit_rows)
    robust = robustness_table(result, plan.reference.label)
    flips = result[(result["scope"] == "cell") & result["decision_differs_from_reference"]]
    timings["sweep_total"] = time.perf_counter() - t_start
    manifest = sweep_manifest(loaded, specs, settings, plan, fit_rows, cache, len(flips), timings)

    with atomic_run_folder(destination, overwrite=overwrite, what="sensitivity folder") as tmp:
        result.to_csv(tmp / "sensitivity.csv", index=False)
        fits.to_csv(tmp / "fits.csv", index=False)
        robust.to_csv(tmp / "robustness.csv", index=False)
        if plots:
            start = time.perf_counter()
            plot_sensitivity(result, tmp / "sensitivity.png", title=f"{loaded.id}: sensitivity of the decisions")
            timings["plot"] = time.perf_counter() - start
        timings["total"] = time.perf_counter() - t_start
        manifest["timings_seconds"] = timings
        write_json(tmp / "manifest.json", manifest)
    return SensitivityResult(
        folder=destination,
        table=result,
        robustness=robust,
        fits=fits,
        flips=flips,
        timings=timings,
        manifest=manifest,
    )


def fit_grid(
    loaded: Study,
    model_spec: ModelSpec,
    plan: SweepPlan,
    settings: SamplerSettings,
    cache: CompileCache,
    timings: dict[str, float],
    say: Callable[[str], object],
) -> tuple[list[dict], list[pd.DataFrame]]:
    """Fit every configuration of the plan (adding their sampling and prior-draw times to ``timings``):
    one ``fits.csv`` row per fit and its decision table under every margin set."""
    fit_rows, table_parts = [], []
    for number, cfg in enumerate(plan.configs, start=1):
        say(f"fit {number}/{len(plan.configs)}: {cfg.label}")
        fitted = fit_study(
            loaded,
            spec=cfg.spec(model_spec),
            prior_set=cfg.prior_set,
            seed=cfg.seed(settings.seed),
            chains=settings.chains,
            draws=settings.draws,
            tune=settings.tune,
            compiled=cache,
            posterior_predictive=False,
            prior_var_names=(),  # no prior group: the decision tables draw their own prior of delta
            full_results=False,  # margin_set_table makes the sweep's decision tables
        )
        timings["sampling"] += fitted.timings["sample"]
        timings["prior_draws"] += fitted.timings["prior_draws_decisions"]
        fit_info = fit_summary(fitted, cfg)

        fit_rows.append(fit_info)
        table_parts += [margin_set_table(fitted, mname, mvals, fit_info) for mname, mvals in plan.margin_sets.items()]
    return fit_rows, table_parts


def sweep_manifest(
    loaded: Study,
    specs: tuple[ModelSpec, str | Path, str],
    settings: SamplerSettings,
    plan: SweepPlan,
    fit_rows: list[dict],
    cache: CompileCache,
    n_flips: int,
    timings: dict[str, float],
) -> dict:
    """``manifest.json`` of the sweep folder, short of the checksums (written on publish)."""
    model_spec, spec, spec_sha = specs
    msets = plan.margin_sets
    return {
        **provenance(__version__),
        "kind": "sensitivity",
        "study": {
            "id": loaded.id,
            "folder": str(loaded.folder),
            "simulated": loaded.simulated,
            "sha256": loaded.sha256(),
        },
        "spec": {
            "name": model_spec.name,
            "path": str(spec),
            "sha256": spec_sha,
            "sensitivity": model_spec.sensitivity.model_dump(),
        },
        "seed": settings.seed,
        "sampler": settings.__dict__,
        "fits": fit_rows,
        "n_fits": len(plan.configs),
        "n_configurations": len(plan.configs) * len(msets),
        "correlation_note": _correlation_note(plan.uses_rho),
        "margin_sets": {m: {o: {"margin": v[0], "source": v[1]} for o, v in vals.items()} for m, vals in msets.items()},
        "margin_note": _margin_note(plan.inputs),
        "priors": {p: r.model_dump() | {"text": r.text()} for p, r in plan.priors.items()},
        "reference_configuration": {"label": plan.reference.label, "margin_set": "study"},
        "decision_rule": dec.DecisionRule(threshold=model_spec.decision.threshold).text,
        "structures_compiled": len(cache.models),
        "compile_once": "every fit is run.fit_study with one CompileCache: one nutpie compile per model structure "
        "(prior family x correlation mode x outcome pooling); prior hyperparameters, fixed correlations and "
        "tau scales are swapped as data",
        "diagnostics_failures": [f["configuration"] for f in fit_rows if f["diagnostics_status"] == "fail"],
        "decision_flips": n_flips,
        "timings_seconds": timings,
        "times": list(plan.inputs.coords["time"]),
    }


def _correlation_note(uses_rho: bool) -> str:
    """Why the sweep fitted every correlation assumption, or only one."""
    if uses_rho:
        return "rho enters the model; every correlation assumption of the grid was fitted"
    return (
        "no likelihood term of this study depends on the baseline-follow-up correlation "
        "(e.g. contrasts only): the correlation assumptions would give identical fits, so one was run"
    )


def _margin_note(inputs: ModelInputs) -> str:
    """How margin sets and the margin-based priors stay separate sensitivities."""
    return (
        "Margins enter only the decisions: each margin set is applied to the same posterior draws of each fit. "
        "The margin-based priors (small_difference, sceptical_of_equivalence, enthusiastic) stay "
        "calibrated to the study's pre-specified margin "
        f"(smallest standardized margin {float(np.min(inputs.margin_std)):.4g} SD), whatever margin set is "
        "applied, so that margin sets and priors are separate sensitivities."
    )
