r"""Sensitivity analysis: refit a study over prior sets x correlation assumptions, decide over margin sets.

The grid is the spec's ``[sensitivity]`` table (``models/default.toml``), so it changes without code:

* every **prior set** on the time-point treatment difference :math:`\Delta_t` (weakly informative,
  small difference, sceptical of equivalence, enthusiastic, vague, or any set the spec defines) is
  combined with every **baseline-follow-up correlation assumption** (``"uncertain"``: the Beta priors
  of ``[correlation]``; a number: :math:`\rho_o` fixed at that value for every outcome): each pair is
  one fit;
* every prior set that follows the spec's pooling is refitted under every alternative **outcome
  pooling** (``[sensitivity] outcome_pooling``: a tau scale, or none), at the reference correlation;
* every **margin set** (the study's own margins, plus the alternatives of methods.md section 1a) is
  applied to the draws of every fit. Margins change no posterior here: they enter only the
  decisions. The margin-based priors (small difference, sceptical of equivalence, enthusiastic) stay
  calibrated to the study's pre-specified margin (the spec's ``reference_margin``), so that a margin
  set asks "is the same posterior inside a different margin?" and not "what if the prior had been
  built around another margin?" (the latter would mix two sensitivities in one number).

Every fit is :func:`bayes_stenosis.run.fit_study`, the pipeline of ``bayes-stenosis fit`` (without
the posterior predictive, which no decision uses). Compile once, swap data: the Delta prior's
hyperparameters (``prior_Delta_mu``, ``prior_Delta_sigma``, ``prior_Delta_nu``) and a fixed
correlation (``rho_fixed``) are ``pm.Data`` containers of the model
(:func:`bayes_stenosis.model.build_model`), so one nutpie compile serves every prior set of a family
(Student-t or normal) and every fixed value. A sweep compiles once per model *structure* (family x
correlation mode: at most 4; one :class:`~bayes_stenosis.inference.CompileCache` across the sweep)
and each further fit costs only its sampling (a compile costs 5-60 s, BENCHMARKS.md). Each fit's
chains run in parallel on up to 2 cores (nutpie ``cores``); running two fits at once would not help
on a 2-core machine.

Each fit is diagnosed (R-hat, bulk/tail ESS, divergences; the spec's ``[diagnostics]`` limits) and
its verdict is written beside its probabilities: failures are reported, not hidden.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_stenosis import __version__
from bayes_stenosis import decisions as dec
from bayes_stenosis.errors import InputError
from bayes_stenosis.inference import CompileCache, SamplerSettings
from bayes_stenosis.model import build_model, prepare_inputs, resolve_prior
from bayes_stenosis.provenance import provenance
from bayes_stenosis.run import (
    Fit,
    atomic_run_folder,
    check_output_folder,
    destination_lock,
    evidence_mask,
    fit_study,
    make_parents,
    published_file,
    read_manifest,
    write_json,
)
from bayes_stenosis.spec import ModelSpec, load_spec
from bayes_stenosis.study import Study, load_study

#: Columns of sensitivity.csv, in order (the report reads it by these names).
COLUMNS = (
    "study",
    "configuration",
    "prior_set",
    "prior_on_Delta",
    "correlation",
    "outcome_pooling",
    "between_test",
    "followup_sd_ratio",
    "analysed_fraction",
    "margin_set",
    "scope",
    "time",
    "outcome",
    "evidence",
    "margin",
    "margin_source",
    "delta_mean_natural",
    "delta_sd_natural",
    "prob_equivalence",
    "mcse_prob_equivalence",
    "prob_equivalence_prior",
    "prob_noninferiority",
    "mcse_prob_noninferiority",
    "prob_noninferiority_prior",
    "prob_superiority",
    "prob_harm_beyond_margin",
    "decision",
    "decision_within_2_mcse_of_threshold",
    "decision_threshold",
    "decision_differs_from_reference",
    "reference_configuration",
    "diagnostics_status",
    "diagnostics_reasons",
    "divergences",
    "max_rhat",
    "min_ess_bulk",
    "min_ess_tail",
    "sampling_seconds",
)


@dataclass(frozen=True)
class FitConfig:
    """One fit of the grid: a prior set, a correlation assumption, an outcome pooling and, for threshold
    statements, the test assumed, the follow-up / baseline SD ratio and the share of patients analysed
    (``"spec"``: the spec's own choice)."""

    prior_set: str
    correlation: str | float  # "uncertain" or a fixed value
    pooling: str | float = "spec"  # "spec" (the spec's [hierarchy]), "none", or a tau scale (SMD)
    between_test: str = "spec"  # "spec", "change", "follow_up" or "ancova"
    followup_sd_ratio: str | float = "spec"  # "spec" ([scale]'s prior) or a fixed ratio
    analysed_fraction: str | float = "spec"  # "spec" or a share of the randomised n

    @property
    def correlation_label(self) -> str:
        return "uncertain" if self.correlation == "uncertain" else f"fixed {float(self.correlation):g}"

    @property
    def pooling_label(self) -> str:
        if self.pooling in ("spec", "none"):
            return str(self.pooling)
        return f"tau scale {float(self.pooling):g}"

    @property
    def label(self) -> str:
        # axes at the spec's value stay out of the label, so a fit keeps its label (and its seed)
        # whatever other axes the grid has
        parts = [f"{self.prior_set} | rho {self.correlation_label}"]
        if self.pooling != "spec":
            parts.append(f"pooling {self.pooling_label}")
        if self.between_test != "spec":
            parts.append(f"test {self.between_test}")
        if self.followup_sd_ratio != "spec":
            parts.append(f"SD ratio {float(self.followup_sd_ratio):g}")
        if self.analysed_fraction != "spec":
            parts.append(f"analysed {float(self.analysed_fraction):g}")
        return " | ".join(parts)

    def seed(self, run_seed: int) -> int:
        """A seed for this fit from the run seed and the configuration's name: the same fit gets
        the same draws whatever else is in the grid."""
        ss = np.random.SeedSequence([int(run_seed), zlib.crc32(self.label.encode())])
        return int(ss.generate_state(1)[0])

    def spec(self, spec: ModelSpec) -> ModelSpec:
        """``spec`` with this configuration's correlation, outcome pooling and threshold assumptions."""
        out = spec_for_correlation(spec, self.correlation)
        update = {}
        if self.pooling != "spec":
            change = (
                {"outcome_pooling": "none"}
                if self.pooling == "none"
                else {"outcome_pooling": "partial", "tau_scale": float(self.pooling)}
            )
            update["hierarchy"] = type(spec.hierarchy).model_validate(spec.hierarchy.model_dump() | change)
        thresholds = {}
        if self.between_test != "spec":
            thresholds["between_test"] = self.between_test
        if self.analysed_fraction != "spec":
            thresholds["analysed_fraction"] = float(self.analysed_fraction)
        if thresholds:
            update["thresholds"] = type(spec.thresholds).model_validate(spec.thresholds.model_dump() | thresholds)
        if self.followup_sd_ratio != "spec":
            fixed = {"followup_sd_ratio_median": float(self.followup_sd_ratio), "followup_sd_ratio_log_sd": 0.0}
            update["scale"] = type(spec.scale).model_validate(spec.scale.model_dump() | fixed)
        return out.model_copy(update=update)


def threshold_assumptions(spec: ModelSpec, has_thresholds: bool = True) -> dict[str, str]:
    """A fit's assumptions behind threshold statements, in words (three columns of the tables;
    empty for a study without statements)."""
    if not has_thresholds:
        return {"between_test": "", "followup_sd_ratio": "", "analysed_fraction": ""}
    ratio = (
        f"{spec.scale.followup_sd_ratio_median:g} (fixed)"
        if spec.scale.followup_sd_ratio_log_sd == 0
        else f"LogNormal(log {spec.scale.followup_sd_ratio_median:g}, {spec.scale.followup_sd_ratio_log_sd:g})"
    )
    return {
        "between_test": spec.thresholds.between_test,
        "followup_sd_ratio": ratio,
        "analysed_fraction": f"{spec.thresholds.analysed_fraction:g}",
    }


def grid(spec: ModelSpec, uses_rho: bool, uses_thresholds: bool = False) -> tuple[list[FitConfig], FitConfig]:
    """The fits of the sweep, and the reference one.

    Every prior set x every correlation assumption (the spec's pooling); then, one axis at a time at
    the reference correlation (a full cross would multiply the fits without asking a new question):
    every prior set that follows the spec's pooling x every alternative pooling; and, when the study
    has threshold statements, every prior set x every alternative test assumed, follow-up / baseline
    SD ratio and share analysed.
    """
    sens = spec.sensitivity
    correlations = list(sens.correlations) if uses_rho else ["uncertain"]
    reference = FitConfig(
        spec.prior.default if spec.prior.default in sens.prior_sets else sens.prior_sets[0],
        "uncertain" if "uncertain" in correlations else correlations[0],
    )
    configs = [FitConfig(p, c) for p in sens.prior_sets for c in correlations]
    for pooling in sens.outcome_pooling:
        for p in sens.prior_sets:
            if pooling != "spec" and spec.prior_sets[p].outcome_pooling == "spec":
                configs.append(FitConfig(p, reference.correlation, pooling))
    if uses_thresholds:
        axes = (
            ("between_test", [t for t in sens.between_tests if t not in ("spec", spec.thresholds.between_test)]),
            ("followup_sd_ratio", [r for r in sens.followup_sd_ratios if r != "spec"]),
            ("analysed_fraction", [f for f in sens.analysed_fractions if f != "spec"]),
        )
        for axis, values in axes:
            for value in values:
                configs += [FitConfig(p, reference.correlation, **{axis: value}) for p in sens.prior_sets]
    return configs, reference


@dataclass
class SensitivityResult:
    folder: Path
    table: pd.DataFrame
    robustness: pd.DataFrame  # per cell and joint row: P(equiv) range over the fits, study margins
    fits: pd.DataFrame  # one row per fit: configuration, diagnostics, timings
    flips: pd.DataFrame  # cell rows whose decision differs from the reference configuration
    timings: dict[str, float]
    manifest: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------


def margin_sets(study: Study, spec: ModelSpec) -> dict[str, dict[str, tuple[float, str]]]:
    """``margin set -> outcome -> (margin in natural units, where it comes from)``.

    ``"study"`` holds the study's own margins; each spec margin set rescales its per-instrument value
    from the instrument's reference range to the outcome's scale width. An outcome whose instrument
    the set does not list keeps the study margin (and says so).
    """
    sens = spec.sensitivity
    out: dict[str, dict[str, tuple[float, str]]] = {"study": {}}
    for o in study.outcomes:
        m = study.outcome(o).margin
        if m is None:
            raise InputError(study.folder / "study.toml", f"outcome {o} has no margin", field=f"outcomes.{o}.margin")
        out["study"][o] = (float(m), "study.toml: " + study.outcome(o).margin_source)
    for name, ms in sens.margin_sets.items():
        out[name] = {}
        for o in study.outcomes:
            oc = study.outcome(o)
            if oc.instrument in ms.margins:
                width = oc.scale_max - oc.scale_min
                value = ms.margins[oc.instrument] * width / sens.instrument_range[oc.instrument]
                out[name][o] = (
                    float(value),
                    f"{ms.description}: {oc.instrument} {ms.margins[oc.instrument]:g} of "
                    f"{sens.instrument_range[oc.instrument]:g}, on a scale of width {width:g}",
                )
            else:
                out[name][o] = (out["study"][o][0], f"no {name} value for {oc.instrument}: study margin kept")
    return out


def spec_for_correlation(spec: ModelSpec, correlation) -> ModelSpec:
    """The spec with the baseline-follow-up correlation fixed (or left to its Beta priors)."""
    fixed = None if correlation == "uncertain" else float(correlation)
    corr = type(spec.correlation).model_validate(spec.correlation.model_dump() | {"fixed_baseline_followup": fixed})
    return spec.model_copy(update={"correlation": corr})


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------


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
    model_spec, spec, spec_sha = specs
    sens = model_spec.sensitivity
    inputs = prepare_inputs(loaded, model_spec)
    msets = margin_sets(loaded, model_spec)
    priors = {p: resolve_prior(model_spec, p, inputs) for p in sens.prior_sets}
    # does any likelihood term depend on rho? (contrast-only studies: no) -> then one assumption only
    probe = build_model(inputs, model_spec, priors[sens.prior_sets[0]]).named_vars
    uses_rho = "rho" in probe
    configs, reference = grid(model_spec, uses_rho, uses_thresholds="threshold_se_factor" in probe)
    timings: dict[str, float] = {"prepare": time.perf_counter() - t_start, "sampling": 0.0, "prior_draws": 0.0}

    cache = CompileCache(settings)
    fit_rows, table_parts = [], []
    for cfg in configs:
        say(f"fitting {cfg.label}")
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
            prior_var_names=["delta_natural"],
        )
        timings["sampling"] += fitted.timings["sample"]
        timings["prior_draws"] += fitted.timings["prior_predictive"]
        fit_info = fit_summary(fitted, cfg)

        fit_rows.append(fit_info)
        table_parts += [margin_set_table(fitted, mname, mvals, fit_info) for mname, mvals in msets.items()]
    timings["compile"] = cache.compile_seconds

    result = pd.concat(table_parts, ignore_index=True)
    result["study"] = loaded.id
    result["reference_configuration"] = reference.label
    ref = result[(result["configuration"] == reference.label) & (result["margin_set"] == "study")]
    # the reference decision of a cell is the reference configuration's under the study margins
    ref_decision = dict(zip(zip(ref["scope"], ref["time"], ref["outcome"], strict=True), ref["decision"], strict=True))
    keys = zip(result["scope"], result["time"], result["outcome"], strict=True)
    result["decision_differs_from_reference"] = [
        d != ref_decision.get(k, d) for d, k in zip(result["decision"], keys, strict=True)
    ]
    result = result[list(COLUMNS)]
    fits = pd.DataFrame(fit_rows)
    robust = robustness_table(result, reference.label)
    flips = result[(result["scope"] == "cell") & result["decision_differs_from_reference"]]
    timings["sweep_total"] = time.perf_counter() - t_start

    manifest = {
        **provenance(__version__),
        "kind": "sensitivity",
        "study": {
            "id": loaded.id,
            "folder": str(loaded.folder),
            "simulated": loaded.simulated,
            "sha256": loaded.sha256(),
        },
        "spec": {"name": model_spec.name, "path": str(spec), "sha256": spec_sha, "sensitivity": sens.model_dump()},
        "seed": settings.seed,
        "sampler": settings.__dict__,
        "fits": fit_rows,
        "n_fits": len(configs),
        "n_configurations": len(configs) * len(msets),
        "correlation_note": (
            "rho enters the model; every correlation assumption of the grid was fitted"
            if uses_rho
            else "no likelihood term of this study depends on the baseline-follow-up correlation "
            "(e.g. contrasts only): the correlation assumptions would give identical fits, so one was run"
        ),
        "margin_sets": {m: {o: {"margin": v[0], "source": v[1]} for o, v in vals.items()} for m, vals in msets.items()},
        "margin_note": (
            "Margins enter only the decisions: each margin set is applied to the same posterior draws of each fit. "
            "The margin-based priors (small_difference, sceptical_of_equivalence, enthusiastic) stay "
            "calibrated to the study's pre-specified margin "
            f"(smallest standardized margin {float(np.min(inputs.margin_std)):.4g} SD), whatever margin set is "
            "applied, so that margin sets and priors are separate sensitivities."
        ),
        "priors": {p: r.model_dump() | {"text": r.text()} for p, r in priors.items()},
        "reference_configuration": {"label": reference.label, "margin_set": "study"},
        "decision_rule": dec.DecisionRule(threshold=model_spec.decision.threshold).text,
        "structures_compiled": len(cache.models),
        "compile_once": "every fit is run.fit_study with one CompileCache: one nutpie compile per model structure "
        "(prior family x correlation mode x outcome pooling); prior hyperparameters, fixed correlations and "
        "tau scales are swapped as data",
        "diagnostics_failures": [f["configuration"] for f in fit_rows if f["diagnostics_status"] == "fail"],
        "decision_flips": int(len(flips)),
        "timings_seconds": timings,
        "times": list(inputs.coords["time"]),
    }

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


def robustness_table(table: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Does "equivalent" survive the assumptions? Per cell and joint row, under the study's margins:
    P(equiv) of the reference fit, its smallest and largest value over all fits (with the fit that
    gives it), and how many fits call it equivalent. Fits that failed their diagnostics are counted
    and named, not dropped."""
    study = table[(table["margin_set"] == "study") & (table["scope"] != "any_beyond_margin")]
    rows = []
    for (scope, week, outcome), group in study.groupby(["scope", "time", "outcome"], sort=False, dropna=False):
        ref = group[group["configuration"] == reference]
        low = group.loc[group["prob_equivalence"].idxmin()]
        high = group.loc[group["prob_equivalence"].idxmax()]
        rows.append(
            {
                "scope": scope,
                "time": week,
                "outcome": outcome,
                "evidence": group["evidence"].iloc[0],
                "prob_equivalence_reference": float(ref["prob_equivalence"].iloc[0]) if len(ref) else float("nan"),
                "decision_reference": ref["decision"].iloc[0] if len(ref) else "",
                "prob_equivalence_min": float(low["prob_equivalence"]),
                "configuration_min": low["configuration"],
                "prob_equivalence_max": float(high["prob_equivalence"]),
                "configuration_max": high["configuration"],
                "n_fits": len(group),
                "n_equivalent": int((group["decision"] == "equivalent").sum()),
                "n_failed_diagnostics": int((group["diagnostics_status"] == "fail").sum()),
                "equivalent_in_every_fit": bool((group["decision"] == "equivalent").all()),
            }
        )
    return pd.DataFrame(rows)


def matching_robustness(run_folder: Path) -> tuple[pd.DataFrame, dict] | None:
    """The robustness table of the sweep beside a run (``<out>/<study>/sensitivity/``), when that sweep
    was made from the same study files and the same spec as the run; None otherwise.

    Both checks use the SHA-256 recorded in the two manifests, so a sweep of other data or of an edited
    spec is never shown as if it were this run's.
    """
    run = read_manifest(run_folder)
    sweep_folder = Path(run_folder).parent / "sensitivity"
    robust_path = published_file(sweep_folder / "robustness.csv")
    manifest_path = published_file(sweep_folder / "manifest.json")
    if robust_path is None or manifest_path is None:
        return None
    sweep = json.loads(manifest_path.read_text())
    same_study = sweep.get("study", {}).get("sha256") == run["study"]["sha256"]
    same_spec = sweep.get("spec", {}).get("sha256") == run["spec"]["sha256"]
    if not (same_study and same_spec):
        return None
    return pd.read_csv(robust_path), sweep


def fit_summary(fitted: Fit, cfg: FitConfig) -> dict:
    """One row of ``fits.csv``: the configuration, its seed, its diagnostics and sampling time."""
    params, samp, v = fitted.parameters, fitted.sampler_stats, fitted.verdict
    finite = params.dropna(subset=["r_hat"])
    return {
        "configuration": cfg.label,
        "prior_set": cfg.prior_set,
        "prior_on_Delta": fitted.prior.text(),
        "correlation": cfg.correlation_label,
        "outcome_pooling": outcome_pooling_text(fitted),
        **threshold_assumptions(fitted.spec, len(fitted.inputs.thresholds) > 0),
        "seed": fitted.settings.seed,
        "diagnostics_status": v.status,
        "diagnostics_reasons": "; ".join(v.reasons) if v.reasons else "all checks passed",
        "divergences": int(np.nansum(samp["divergences"])),
        "max_rhat": float(finite["r_hat"].max()) if len(finite) else np.nan,
        "min_ess_bulk": float(finite["ess_bulk"].min()) if len(finite) else np.nan,
        "min_ess_tail": float(finite["ess_tail"].min()) if len(finite) else np.nan,
        "sampling_seconds": fitted.timings["sample"],
    }


def outcome_pooling_text(fitted: Fit) -> str:
    if fitted.prior.outcome_pooling == "none":
        return "none"
    return f"partial, tau ~ HalfNormal({fitted.spec.hierarchy.tau_scale:g} SMD)"


def margin_set_table(fitted: Fit, name: str, margin_set: dict[str, tuple[float, str]], fit_info: dict) -> pd.DataFrame:
    """The decision table of one fit under one margin set, with the fit's diagnostics on every row."""
    outcomes = fitted.inputs.coords["outcome"]
    direction = dict(zip(outcomes, fitted.inputs.direction, strict=True))
    rule = dec.DecisionRule(threshold=fitted.spec.decision.threshold)
    delta_nat = fitted.idata.posterior["delta_natural"]
    table = dec.decision_table(
        delta_nat,
        {o: margin_set[o][0] for o in outcomes},
        direction,
        rule,
        prior_delta_natural=fitted.prior_delta_natural,
        evidence=evidence_mask(fitted.inputs),
    )
    table = table[table["scope"] != "any_beyond_margin"].copy()
    table["margin_set"] = name
    cell_keys = list(zip(table["time"], table["outcome"], strict=True))
    post_mean = delta_nat.mean(("chain", "draw")).to_series()
    post_sd = delta_nat.std(("chain", "draw"), ddof=1).to_series()
    table["delta_mean_natural"] = [post_mean.get(k, np.nan) for k in cell_keys]
    table["delta_sd_natural"] = [post_sd.get(k, np.nan) for k in cell_keys]
    table["margin_source"] = [margin_set[o][1] if o in margin_set else "" for o in table["outcome"]]
    evidence = fitted.inputs.evidence_by_cell.set_index(["time", "outcome"])["evidence"]
    table["evidence"] = [evidence.get(k, "joint") for k in cell_keys]
    for key, value in fit_info.items():
        if key != "seed":
            table[key] = value
    return table


# ---------------------------------------------------------------------------------------------
# The figure
# ---------------------------------------------------------------------------------------------

_DECISION_MARK = {"equivalent": "E", "not equivalent": "N", "undecided": ""}


def plot_sensitivity(table: pd.DataFrame, path: Path, title: str = "sensitivity") -> None:
    """Small multiples, one heat map per margin set: rows = fits (prior set x correlation), columns =
    cells (week x outcome) and the joint rows; colour = P(equivalence); a letter = a decision
    (E equivalent, N not equivalent); a black frame = the decision differs from the reference fit
    under the study margins; a red row label = that fit failed its diagnostics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    cells = table[table["scope"].isin(["cell", "joint_time"])].copy()
    cells["column"] = [
        f"wk {t:g}\n{o if s == 'cell' else 'all'}"
        for t, o, s in zip(cells["time"], cells["outcome"], cells["scope"], strict=True)
    ]
    col_order = list(dict.fromkeys(cells.sort_values(["time", "scope"], kind="stable")["column"]))
    row_order = list(dict.fromkeys(table["configuration"]))
    msets = list(dict.fromkeys(table["margin_set"]))
    status = table.drop_duplicates("configuration").set_index("configuration")["diagnostics_status"]
    threshold = float(table["decision_threshold"].iloc[0])
    n_flips = int(((table["scope"] == "cell") & table["decision_differs_from_reference"]).sum())

    width = max(6.0, 0.62 * len(col_order) * len(msets) + 3.5)
    height = max(3.0, 0.38 * len(row_order) + 2.2)
    fig, axes = plt.subplots(1, len(msets), figsize=(width, height), sharey=True, squeeze=False)
    image = None
    for ax, mset in zip(axes[0], msets, strict=True):
        sub = cells[cells["margin_set"] == mset]
        grid = sub.pivot_table(index="configuration", columns="column", values="prob_equivalence", aggfunc="first")
        grid = grid.reindex(index=row_order, columns=col_order)
        image = ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        lookup = sub.set_index(["configuration", "column"])
        for i, cfg in enumerate(row_order):
            for j, col in enumerate(col_order):
                if (cfg, col) not in lookup.index:
                    continue
                rec = lookup.loc[(cfg, col)]
                p = float(rec["prob_equivalence"])
                mark = _DECISION_MARK.get(rec["decision"], "?")
                ax.text(
                    j,
                    i,
                    f"{p:.2f}{(' ' + mark) if mark else ''}",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="black" if p > 0.6 else "white",
                )
                if bool(rec["decision_differs_from_reference"]):
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
        ax.set_xticks(range(len(col_order)), col_order, fontsize=7)
        ax.set_title(f"margins: {mset}", fontsize=9)
        ax.set_yticks(range(len(row_order)), row_order, fontsize=7)
    for label in axes[0][0].get_yticklabels():
        if status.get(label.get_text()) == "fail":
            label.set_color("red")
    fig.colorbar(image, ax=axes[0].tolist(), fraction=0.025, pad=0.01, label="P(|delta| < margin)")
    verdict_text = (
        "no decision differs from the reference fit"
        if n_flips == 0
        else f"{n_flips} cell decisions differ from the reference fit (framed)"
    )
    failed = int((status == "fail").sum())
    fig.suptitle(
        f"{title}\n{verdict_text}; E = equivalent, N = not equivalent (rule threshold {threshold:g}); "
        f"{failed} of {len(status)} fits failed diagnostics (red labels)",
        fontsize=9,
    )
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


__all__ = [
    "COLUMNS",
    "FitConfig",
    "SensitivityResult",
    "grid",
    "matching_robustness",
    "margin_sets",
    "plot_sensitivity",
    "robustness_table",
    "run_sensitivity",
]
