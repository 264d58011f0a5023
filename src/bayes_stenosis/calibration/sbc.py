r"""Simulation-based calibration (SBC) of every likelihood term.

SBC (Talts, Betancourt, Simpson, Vehtari & Gelman 2018, arXiv:1804.06788). For a model
:math:`p(\theta)\,p(y \mid \theta)` and any scalar quantity :math:`f(\theta)`: draw
:math:`\tilde\theta \sim p(\theta)`, :math:`\tilde y \sim p(y \mid \tilde\theta)`, fit, and rank
:math:`f(\tilde\theta)` among :math:`L` (near-)independent posterior draws (``calibration.ranks``). The
ranks are uniform exactly when the fitted posterior is the true posterior of the generative model; a
wrong likelihood, a wrong prior or a sampler bias makes them non-uniform (posterior too narrow:
U-shaped histogram; too wide: hump; biased: sloped).

The data are simulated **from the model's own generative process**: ``pm.sample_prior_predictive``
on the package's model draws the parameters and the observed nodes together (the arm-summary mean
changes and reported squared SDs, the contrast estimates, the patients' baseline and follow-up scores).
For patient-level data the follow-up term is conditional on the baselines as covariates: the
replicate's baselines are drawn for the baseline term while the follow-ups are drawn given the
template's baselines, which the fit conditions on too (the likelihood factorises, so the ranks stay
exactly uniform). The threshold terms are Potentials (a censored likelihood), so their data are
simulated with the model's own statement simulation (``model.simulate_study_statement_statistics``)
from the prior draw's ``model.STATEMENT_VARIABLES``. With the joint statement term (``threshold_joint``,
the default for a study with within-arm statements): each arm's mean-change errors :math:`z_a \sim
MVN(0, R)` over the cells (``threshold_cell_corr``), :math:`u_a = \lambda_a + z_a`
(``threshold_arm_noncentrality``), within-arm :math:`T = u_a / S_a`, between-arm
:math:`T = (w_{new} u_{new} - w_{ref} u_{ref}) / S_b`, with the arms' chi SD ratios :math:`S_a` and
their pooled :math:`S_b`. Otherwise :math:`T_k = (Z_k + \lambda_k)/S_k` from ``threshold_noncentrality``,
:math:`Z` of the between-arm statements :math:`MVN(0, R)` (``threshold_between_corr``), of the within-arm
statements independent, :math:`S_k = \sqrt{\chi^2_{df}/df}`. The reported statement is the event
:math:`|T| < c` ("P>0.05") or :math:`T < -c` / :math:`T > c` ("P<0.05" in a direction). By default
the event kind is a constant of the compiled graph (``inference.structure_key`` tells patterns apart),
so replicates are **grouped by their event pattern**, one :class:`~bayes_stenosis.inference.CompiledModel`
per pattern; a case with ``kinds_as_data`` (the flagship's 24 statements: up to 3^24 patterns) fits the
kinds as data, one compile for all. Every replicate is kept, none rejected, so the ranks stay exactly
uniform under correct calibration.

Each compiled model is refitted per replicate by swapping the data (``CompiledModel.fit_values``);
2 chains on 2 cores. The pooled draws are thinned to :math:`L` evenly spaced draws; the bulk ESS of
every ranked quantity is recorded and the share of fits with ESS < L reported.

Deliberately wrong likelihood (``wrong="se_as_sd"``): the fitted likelihood divides the standard
error by :math:`\sqrt{n}` once more, as when a reported standard error is taken for a standard
deviation (contrasts: :math:`SE / \sqrt{n_1 n_2 / (n_1 + n_2)}`; arm summaries: the reported SD
replaced by :math:`s / \sqrt n`). The posterior is then too narrow and the ranks pile up at 0 and
L; the test suite checks that the quick SBC detects it. For threshold statements fitted as data
(``wrong="direction_flipped"``) the fitted statements have their sides swapped ("P<0.05, improvement"
read as a worsening, a sign error in the direction convention): the posterior of each arm's change
lies on the wrong side of zero.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm

from bayes_stenosis.calibration.cases import CASES, MODES, Case, Mode, build_case_model, case_template
from bayes_stenosis.calibration.ranks import SBCResult, ranks_of_truth, uniformity
from bayes_stenosis.calibration.results import ALPHA, summary_entry, write_result, write_summary
from bayes_stenosis.inference import CompiledModel, SamplerSettings
from bayes_stenosis.model import (
    EVENT_KIND_CODES,
    STATEMENT_VARIABLES,
    ModelInputs,
    check_forward_sampling,
    data_values,
    simulate_study_statement_statistics,
    statement_event_kinds,
    threshold_design,
)
from bayes_stenosis.provenance import git_commit
from bayes_stenosis.spec import ModelSpec, load_spec


def quantity_names(model: pm.Model, case: Case) -> list[str]:
    """The case's ranked quantities that the model has."""
    return [q for q in case.quantities if q in model.named_vars]


def observed_data_names(model: pm.Model) -> dict[str, str]:
    """observed RV name -> the pm.Data container holding its observed value."""
    return {rv.name: model.rvs_to_values[rv].name for rv in model.observed_RVs}


def prior_draws(model: pm.Model, names: Sequence[str], draws: int, seed: int) -> dict[str, np.ndarray]:
    """Joint prior (and prior-predictive) draws of ``names``: arrays with a leading draw axis."""
    check_forward_sampling(model)
    with model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Potentials.*")
        idata = pm.sample_prior_predictive(draws=draws, random_seed=seed, var_names=list(names))
    out = {}
    for group in ("prior", "prior_predictive"):
        if group in idata.groups():
            for name, arr in idata[group].data_vars.items():
                out[name] = arr.values[0]
    return out


def simulate_threshold_events(
    inputs: ModelInputs, spec: ModelSpec, draws: dict, rng: np.random.Generator
) -> list[tuple[str, ...]]:
    """Per prior draw, the event kind of every threshold statement (the model's generative process).

    The statistics are ``model.simulate_study_statement_statistics`` of the draw's
    ``model.STATEMENT_VARIABLES``: every statement jointly when the fit uses the joint statement term, else
    the between-arm statements jointly and the within-arm ones independent; the kinds are ``"inside"``,
    ``"below"`` or ``"above"`` per statement, in the design's row order.
    """
    design = threshold_design(inputs, spec)
    t_stat = simulate_study_statement_statistics(draws, inputs, spec, rng)[:, 0, :]
    kinds = statement_event_kinds(t_stat, design["crit"].to_numpy(dtype=float)[None, :])
    return [tuple(row) for row in kinds]


def pattern_label(pattern: Sequence[str]) -> str:
    """A replicate's event pattern in the ranks CSV: ``inside/below`` for up to 3 statements, else one
    letter per statement in row order (``i``, ``b``, ``a``)."""
    return "/".join(pattern) if len(pattern) <= 3 else "".join(kind[0] for kind in pattern)


def pattern_counts(patterns: Sequence[tuple], design: pd.DataFrame) -> dict[str, int]:
    """How often each event pattern occurred (up to 3 statements); for more statements, how often each
    kind occurred per comparison, the number of distinct patterns and of replicates that reproduce
    the template's statements exactly."""
    if not patterns or not patterns[0]:
        return {}
    if len(patterns[0]) <= 3:
        return pd.Series([pattern_label(p) for p in patterns]).value_counts().to_dict()
    kinds = np.array(patterns)
    counts = {}
    for comparison in ("between", "within"):
        columns = (design["comparison"] == comparison).to_numpy()
        for kind in ("inside", "below", "above"):
            counts[f"{comparison} {kind}"] = int((kinds[:, columns] == kind).sum())
    counts["distinct patterns"] = len(set(patterns))
    counts["template pattern"] = int((kinds == design["kind"].to_numpy()[None, :]).all(axis=1).sum())
    return counts


WRONG_VARIANTS = ("se_as_sd", "direction_flipped")


def wrong_data(values: dict[str, np.ndarray], inputs, variant: str | None) -> dict[str, np.ndarray]:
    """The data as a deliberately wrong likelihood sees them (module docstring); ``None``: unchanged."""
    if variant is None:
        return values
    if variant not in WRONG_VARIANTS:
        raise ValueError(f"unknown wrong-likelihood variant {variant!r}")
    out = dict(values)
    if variant == "direction_flipped":
        if "threshold_kind" not in out:
            raise ValueError("direction_flipped needs threshold statements fitted as data (kinds_as_data)")
        code, below, above = out["threshold_kind"], EVENT_KIND_CODES["below"], EVENT_KIND_CODES["above"]
        out["threshold_kind"] = np.where(code == below, above, np.where(code == above, below, code))
        return out
    if "contrast_se" in out:
        sizes = list(inputs.arm_sizes.values())
        n_eff = sizes[0] * sizes[1] / (sizes[0] + sizes[1])
        out["contrast_se"] = out["contrast_se"] / math.sqrt(n_eff)
    for name in list(out):
        if name.startswith(("sd_change_", "sd_baseline_", "sd_followup_")) and name.endswith("_sq"):
            arm = name.removesuffix("_sq").split("_", 2)[2]
            n_key = f"n_baseline_{arm}" if name.startswith("sd_baseline_") else f"n_{arm}"
            out[name] = out[name] / out[n_key]  # (s / sqrt(n))^2
    return out


@dataclass
class Replicates:
    """A case's replicates: truths and data drawn from the model's own generative process."""

    model: pm.Model
    inputs: ModelInputs
    names: list[str]  # the ranked quantities
    observed: dict[str, str]  # observed RV -> its data container
    draws: dict[str, np.ndarray]  # prior and prior-predictive draws, leading replicate axis
    base_values: dict | None  # the template's data containers (None: no observed RVs)
    patterns: list[tuple]  # threshold event kinds per replicate; () for other levels
    fit_seeds: np.ndarray
    kinds_as_data: bool = False  # the patterns are fitted as the data container threshold_kind

    def truth(self, r: int) -> dict[str, np.ndarray]:
        return {name: self.draws[name][r] for name in self.names}

    def compile_key(self, r: int) -> tuple:
        """Replicates with equal keys share a compiled model: all of them when the kinds are data."""
        return () if self.kinds_as_data else self.patterns[r]

    def data(self, r: int, wrong: str | None) -> dict | None:
        """Replicate ``r``'s data containers (None: the compiled model's own, for Potentials only)."""
        if not self.observed and not self.kinds_as_data:
            return None
        values = dict(self.base_values)
        replicate = {obs: np.asarray(self.draws[obs][r], dtype=float) for obs in self.observed}
        if self.inputs.ipd is not None:  # the sampled model holds the patients' sufficient statistics
            values |= self.inputs.ipd.stats_values(replicate)
        else:
            values |= {data_name: replicate[obs] for obs, data_name in self.observed.items()}
        if self.kinds_as_data:
            values["threshold_kind"] = np.array([EVENT_KIND_CODES[k] for k in self.patterns[r]], dtype="int64")
        return wrong_data(values, self.inputs, wrong)


def simulate_replicates(case: Case, mode: Mode, spec: ModelSpec, template: Path, seed: int) -> Replicates:
    """Prior draws of the case's quantities and data, one per replicate, and each fit's seed."""
    spec = case.spec(spec)
    seeds = np.random.SeedSequence(seed).spawn(3)
    prior_seed = int(seeds[0].generate_state(1)[0])
    rng = np.random.default_rng(seeds[2])
    model, inputs = build_case_model(template, spec)
    forward, _ = build_case_model(template, spec, prior_sampling=True)
    names = quantity_names(model, case)
    observed = observed_data_names(forward)  # per patient where the sampled model has sufficient statistics
    extra = [v for v in STATEMENT_VARIABLES if v in model.named_vars] if case.level == "threshold" else []
    draws = prior_draws(forward, sorted({*names, *observed, *extra}), mode.replicates, prior_seed)
    if case.level == "threshold":
        patterns = simulate_threshold_events(inputs, spec, draws, rng)
    else:
        patterns = [()] * mode.replicates
    return Replicates(
        model=model,
        inputs=inputs,
        names=names,
        observed=observed,
        draws=draws,
        base_values=data_values(model) if observed or spec.thresholds.kinds_as_data else None,
        patterns=patterns,
        fit_seeds=seeds[1].generate_state(mode.replicates),
        kinds_as_data=case.level == "threshold" and spec.thresholds.kinds_as_data,
    )


def run_case(
    case: Case,
    mode: Mode,
    *,
    seed: int,
    spec: ModelSpec | None = None,
    wrong: Sequence[str | None] = (None,),
    alpha: float = ALPHA,
    workdir: Path | None = None,
    mode_name: str = "",
    log=print,
) -> list[SBCResult]:
    """SBC of one case: prior draws, simulated data, compile-once refits, ranks and their test.

    One result per entry of ``wrong`` (``None`` = the package's likelihood); the variants share the
    prior draws, the simulated data and the compiled models (only the fitted data differ).
    """
    spec = case.spec(spec or load_spec()[0])
    start = time.perf_counter()
    with nullcontext(workdir) if workdir is not None else tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        reps = simulate_replicates(case, mode, spec, case_template(case, root / f"{case.name}_template", seed), seed)
        models = _PatternModels(case, spec, reps, mode.settings(), root, seed)
        ranked = {v: _rank_replicates(models, v, mode, start, log) for v in wrong}
    compile_seconds = sum(c.compile_seconds for c in models.compiled.values())
    return case_results(case, mode, spec, reps, ranked, alpha, mode_name, start, compile_seconds, len(models.compiled))


def case_results(
    case: Case,
    mode: Mode,
    spec: ModelSpec,
    reps: Replicates,
    ranked: dict,
    alpha: float,
    mode_name: str,
    start: float,
    compile_seconds: float,
    compiles: int,
) -> list[SBCResult]:
    """One :class:`SBCResult` per likelihood variant of ``ranked`` (``variant -> (rank rows, divergent fits)``)."""
    counts = pattern_counts(reps.patterns, threshold_design(reps.inputs, spec)) if case.level == "threshold" else {}
    results = []
    for v, (rows, divergent) in ranked.items():
        ranks = pd.DataFrame(rows)
        results.append(
            SBCResult(
                case=case.name,
                mode=mode_name,
                wrong=v,
                ranks=ranks,
                tests=uniformity(ranks, mode.thin_to, mode.bins),
                alpha=alpha,
                keep=mode.thin_to,
                bins=mode.bins,
                seconds=time.perf_counter() - start,
                compile_seconds=compile_seconds,
                divergent_fits=divergent,
                patterns=counts,
                compiles=compiles,
            )
        )
    return results


@dataclass
class _PatternModels:
    """The compiled models of a case's replicates, one per compile key (event pattern), built on first use."""

    case: Case
    spec: ModelSpec
    reps: Replicates
    settings: SamplerSettings
    root: Path  # where the templates of other event patterns are written
    seed: int
    compiled: dict[tuple, CompiledModel] = field(default_factory=dict)

    def fit(self, r: int, wrong: str | None) -> az.InferenceData:
        """Refit replicate ``r``'s data (as the likelihood ``wrong`` sees them) with its own seed."""
        key = self.reps.compile_key(r)
        if key not in self.compiled:
            model = self.reps.model
            if key:
                folder = self.root / f"{self.case.name}_{'_'.join(key)}"
                model = build_case_model(case_template(self.case, folder, self.seed, events=key), self.spec)[0]
            self.compiled[key] = CompiledModel(model, self.settings)
        return self.compiled[key].fit_values(self.reps.data(r, wrong), seed=int(self.reps.fit_seeds[r]))


def _rank_replicates(
    models: _PatternModels, wrong: str | None, mode: Mode, start: float, log=print
) -> tuple[list[dict], int]:
    """Refit every replicate under the likelihood ``wrong`` (None: the package's): the rank rows of its
    quantities and how many fits diverged; a progress line every 50 replicates."""
    reps = models.reps
    rows, divergent = [], 0
    for r, pattern in enumerate(reps.patterns):
        idata = models.fit(r, wrong)
        divergent += int(idata.sample_stats["diverging"].sum() > 0)
        for row in ranks_of_truth(idata, reps.truth(r), reps.names, mode.thin_to):
            rows.append({"replicate": r, "pattern": pattern_label(pattern), **row})
        if (r + 1) % 50 == 0:
            label = models.case.name + (f" (wrong: {wrong})" if wrong else "")
            log(f"  {label}: {r + 1}/{mode.replicates} replicates ({time.perf_counter() - start:.0f} s)")
    return rows, divergent


def run_sbc(
    mode_name: str,
    cases: Sequence[str],
    out: Path,
    seed: int,
    wrong: Sequence[str | None] = (None,),
    replicates: int | None = None,
    log=print,
    case_runner=None,
) -> list[SBCResult]:
    """SBC of each case in ``cases`` (case ``i`` with seed ``seed + i``), written to the run folder ``out``.

    ``wrong``: with any non-None entry, each case also runs its own wrong likelihood (``Case.wrong``:
    ``se_as_sd``, ``direction_flipped``; none for the simulated threshold and IPD cases).
    ``replicates`` overrides the mode's count (a trial run of the mode's sampler settings). Each case's
    ranks, tests and histogram are written as soon as it finishes, and ``sbc_summary.json`` rewritten.
    ``case_runner`` replaces :func:`run_case` (same arguments and results): the CLI passes
    :func:`bayes_stenosis.calibration.sbc_engine.run_case_on_engine` bound to a Dask client and the store
    ``out/.sbc_trials/`` (the same ranks, refitted on the workers; removed at the end).
    """
    mode = MODES[mode_name]
    if replicates is not None:
        mode = dataclasses.replace(mode, replicates=replicates)
    out.mkdir(parents=True, exist_ok=True)
    results, entries = [], []
    commit = git_commit()
    for i, name in enumerate(cases):
        log(f"SBC {name} ({mode_name}) ...")
        # each case's own wrong likelihood (scaled standard errors, flipped statements), where one applies
        case = CASES[name]
        variants = (None, case.wrong) if any(wrong) and case.wrong is not None else (None,)
        runner = case_runner or run_case
        for res in runner(case, mode, seed=seed + i, wrong=variants, mode_name=mode_name, log=log):
            write_result(res, out)
            log("  " + res.text())
            entries.append(summary_entry(res))
            results.append(res)
            write_summary(out, mode_name, mode, seed, commit, entries)
    shutil.rmtree(out / ".sbc_trials", ignore_errors=True)  # every replicate's ranks are in the run folder
    return results
