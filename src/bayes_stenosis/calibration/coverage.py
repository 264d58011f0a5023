"""Interval coverage and equivalence declarations over simulated trials: the one coverage implementation.

:func:`coverage_study` fits each simulated trial and records, per time x outcome cell, whether the
equal-tailed ``prob`` interval of delta covers the truth and whether "equivalent" is declared
(P(|delta| < margin) >= the spec's decision threshold). The coverage tests give it their trials, and
:func:`bayes_stenosis.calibration.coverage_run` (``bayes-stenosis validation coverage``) the published ones.

Trials of one design give models of one structure (same variables, same ``pm.Data`` names and
shapes), so the sampler is compiled once (:class:`~bayes_stenosis.inference.CompileCache`, keyed by
``structure_key``) and each trial swaps its data into that compile: a trial costs its sampling time,
not a compile.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pymc as pm
from arviz import rhat
from scipy import stats

from bayes_stenosis.calibration.cases import model_for
from bayes_stenosis.engine import map_trials
from bayes_stenosis.inference import CompileCache, SamplerSettings
from bayes_stenosis.model import ModelInputs, check_forward_sampling
from bayes_stenosis.spec import ModelSpec


def binomial_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact) interval for a coverage proportion."""
    alpha = 1 - level
    lower = 0.0 if successes == 0 else stats.beta.ppf(alpha / 2, successes, trials - successes + 1)
    upper = 1.0 if successes == trials else stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes)
    return float(lower), float(upper)


def expected_coverage_band(prob: float, n: int, level: float = 0.99) -> tuple[float, float]:
    """Range of observed coverage consistent with nominal ``prob`` over ``n`` independent cells."""
    lo = stats.binom.ppf((1 - level) / 2, n, prob) / n
    hi = stats.binom.ppf(1 - (1 - level) / 2, n, prob) / n
    return float(lo), float(hi)


def trial_clustered_interval(trial: pd.Series, covered: pd.Series, level: float = 0.95) -> tuple[float, float]:
    """Normal interval for the pooled coverage, with the trial as the independent unit.

    A trial's cells (times x outcomes) share its patients, so their coverage indicators are
    correlated and the pooled Clopper-Pearson interval is too narrow. Here the standard error is
    that of the mean of the per-trial coverage shares (every trial has the same cells).
    """
    per_trial = covered.astype(float).groupby(trial).mean()
    if len(per_trial) < 2:
        return (0.0, 1.0)
    z = stats.norm.ppf(1 - (1 - level) / 2)
    se = per_trial.std(ddof=1) / np.sqrt(len(per_trial))
    mean = per_trial.mean()
    return float(max(0.0, mean - z * se)), float(min(1.0, mean + z * se))


class SimulatedTrial(NamedTuple):
    """One simulated trial: its study folder, the true delta_natural (time, outcome) and the fit's seed."""

    folder: Path
    truth: np.ndarray
    seed: int


@dataclass
class CoverageResult:
    """Interval coverage of each delta, and equivalence declarations, over trials."""

    per_cell: pd.DataFrame  # time, outcome, covered, replicates, coverage, ci_low, ci_high, equivalent_*
    overall: dict
    replicates: pd.DataFrame  # one row per trial x cell: truth, lower, upper, covered, max_rhat, ...

    def text(self) -> str:
        o = self.overall
        return (
            f"{o['prob']:.0%} interval coverage {o['coverage']:.3f} over {o['cells']} cell-replicates "
            f"({o['replicates']} trials), 95% Clopper-Pearson {o['ci_low']:.3f}-{o['ci_high']:.3f}"
        )


def cell_columns(reps: pd.DataFrame) -> list[str]:
    """The columns naming a cell (saved runs from before the time column have the outcome only)."""
    return ["time", "outcome"] if "time" in reps else ["outcome"]


def summarise(reps: pd.DataFrame, prob: float) -> CoverageResult:
    """Per cell and pooled: coverage and equivalence declarations with Clopper-Pearson intervals.

    The pooled interval treats the cells as independent; ``overall["ci_by_trial"]`` takes the trial
    as the unit (:func:`trial_clustered_interval`).
    """
    per_cell = []
    columns = cell_columns(reps)
    for key, sub in reps.groupby(columns, sort=False):
        k, n = int(sub["covered"].sum()), len(sub)
        row = dict(zip(columns, key, strict=True))
        row |= {"covered": k, "replicates": n, "coverage": k / n}
        row["ci_low"], row["ci_high"] = binomial_interval(k, n)
        ke = int(sub["equivalent"].sum())
        row |= {"equivalent": ke, "equivalent_declared": ke / n}
        row["equivalent_ci_low"], row["equivalent_ci_high"] = binomial_interval(ke, n)
        per_cell.append(row)
    k, n = int(reps["covered"].sum()), len(reps)
    lo, hi = binomial_interval(k, n)
    overall = {
        "prob": prob,
        "coverage": k / n,
        "ci_low": lo,
        "ci_high": hi,
        "ci_by_trial": trial_clustered_interval(reps["trial"], reps["covered"]),
        "cells": n,
        "replicates": int(reps["trial"].nunique()),
        "max_rhat": float(reps["max_rhat"].max()),
        "divergent_fits": int((reps.groupby("trial")["divergences"].first() > 0).sum()),
    }
    return CoverageResult(per_cell=pd.DataFrame(per_cell), overall=overall, replicates=reps)


def trial_rows(idata, inputs: ModelInputs, trial: int, truth: np.ndarray, prob: float, threshold: float) -> list[dict]:
    """One fitted trial's rows, per time x outcome cell: interval, coverage, P(equivalence), diagnostics."""
    lo_q, hi_q = (1 - prob) / 2, 1 - (1 - prob) / 2
    d = idata.posterior["delta_natural"]
    lower = d.quantile(lo_q, dim=("chain", "draw")).values
    upper = d.quantile(hi_q, dim=("chain", "draw")).values
    margins = np.broadcast_to(inputs.margins, lower.shape)
    p_eq = (np.abs(d) < margins).mean(dim=("chain", "draw")).values
    max_rhat = float(np.nanmax(rhat(idata, var_names=["delta"])["delta"].values))
    divergences = int(idata.sample_stats["diverging"].sum())
    rows = []
    for i, t in enumerate(inputs.coords["time"]):
        for j, o in enumerate(inputs.coords["outcome"]):
            rows.append(
                {
                    "trial": trial,
                    "time": t,
                    "outcome": o,
                    "truth": float(truth[i, j]),
                    "lower": float(lower[i, j]),
                    "upper": float(upper[i, j]),
                    "covered": bool(lower[i, j] <= truth[i, j] <= upper[i, j]),
                    "prob_equivalence": float(p_eq[i, j]),
                    "equivalent": bool(p_eq[i, j] >= threshold),
                    "max_rhat": max_rhat,
                    "divergences": divergences,
                }
            )
    return rows


CellSummary = Callable[[object, ModelInputs, Path], dict[tuple, dict]]


def coverage_study(
    make_trial: Callable[[int], SimulatedTrial],
    spec: ModelSpec,
    prior_set: str,
    trials: Iterable[int],
    settings: SamplerSettings,
    *,
    prob: float = 0.9,
    cell_summary: CellSummary | None = None,
    after_trial: Callable[[int, SimulatedTrial, list[dict]], object] | None = None,
) -> CoverageResult:
    """Fit each trial's study and record whether the equal-tailed interval covers the truth.

    Parameters
    ----------
    make_trial
        ``k -> SimulatedTrial(study folder, true delta_natural of shape (time, outcome), fit seed)``.
    spec, prior_set
        The model fitted to every trial.
    trials
        The trial numbers ``k`` to fit (the ``trial`` column of the rows).
    settings
        Chains, draws, tuning and target acceptance of every fit (the seed is the trial's).
    cell_summary
        Optional ``(idata, inputs, folder) -> {(time, outcome): {column: value}}``: extra columns
        per trial x cell (e.g. the reported threshold statement and a posterior probability).
    after_trial
        Optional ``(k, trial, rows so far)`` callback after each fit (progress, partial results, cleanup).
    """
    cache = CompileCache(settings)
    threshold = spec.decision.threshold
    rows: list[dict] = []
    for k in trials:
        trial = make_trial(int(k))
        model, inputs = model_for(trial.folder, spec, prior_set)
        compiled, _ = cache.get(model)
        idata = compiled.fit(model, seed=int(trial.seed))
        extra = cell_summary(idata, inputs, trial.folder) if cell_summary is not None else {}
        for row in trial_rows(idata, inputs, int(k), np.asarray(trial.truth), prob, threshold):
            rows.append(extra.get((row["time"], row["outcome"]), {}) | row)
        if after_trial is not None:
            after_trial(int(k), trial, rows)
    return summarise(pd.DataFrame(rows), prob)


#: Compiles of this process for engine trials, by sampler settings (one per worker process).
ENGINE_CACHES: dict[tuple, CompileCache] = {}


@dataclass(frozen=True)
class CoverageTrialTask:
    """One coverage trial as a :class:`bayes_stenosis.engine.TrialTask`: ``make(k)`` simulates trial ``k``
    (its patients seeded as in the serial study), the worker fits it on its compile of the structure.

    The engine's stream is not used: trial ``k`` keeps the seeds :func:`coverage_study` gives it, so a run
    on any number of workers gives the serial run's rows.
    """

    make: Callable[[int], SimulatedTrial]
    spec: ModelSpec
    prior_set: str
    settings: SamplerSettings
    prob: float
    fingerprint: str

    def __call__(self, trial: int, rng) -> list[dict]:
        key = (self.settings.chains, self.settings.draws, self.settings.tune, self.settings.target_accept)
        cache = ENGINE_CACHES.setdefault(key, CompileCache(self.settings))
        made = self.make(int(trial))
        model, inputs = model_for(made.folder, self.spec, self.prior_set)
        compiled, _ = cache.get(model)
        idata = compiled.fit(model, seed=int(made.seed))
        rows = trial_rows(idata, inputs, int(trial), np.asarray(made.truth), self.prob, self.spec.decision.threshold)
        shutil.rmtree(made.folder, ignore_errors=True)  # a trial's folder is only needed for its fit
        return [{k: v for k, v in row.items() if k != "trial"} for row in rows]


def coverage_study_on_engine(
    make_trial: Callable[[int], SimulatedTrial],
    spec: ModelSpec,
    prior_set: str,
    trials: range,
    settings: SamplerSettings,
    *,
    client,
    store_path: Path,
    fingerprint: str,
    prob: float = 0.9,
    progress=None,
) -> CoverageResult:
    """:func:`coverage_study` with the trials fitted on a Dask ``client``'s workers (one compile per
    structure per worker), each fitted trial saved in ``store_path`` as it arrives, so a killed run
    resumes (:func:`bayes_stenosis.engine.map_trials`). Trial ``k`` has the serial study's truth and
    seeds: the rows are the serial run's, whatever the number of workers. ``fingerprint`` names the run
    (a store of another run is refused). ``make_trial`` is sent to the workers: its folders must be
    writable there (a ``LocalCluster``, or a shared file system)."""
    task = CoverageTrialTask(make_trial, spec, prior_set, settings, prob, fingerprint)
    report = map_trials(
        task, trials, root_seed=0, store_path=store_path, client=client, batch_size=1, progress=progress
    )
    return summarise(report.table, prob)


def draw_truths_from_prior(model: pm.Model, n: int, seed: int) -> dict[str, np.ndarray]:
    """Prior draws of the change in each arm and of delta (natural units), for prior-truth studies."""
    check_forward_sampling(model)
    with model:
        prior = pm.sample_prior_predictive(
            draws=n,
            random_seed=seed,
            var_names=[
                "change_natural",
                "delta_natural",
                *(["rho"] if "rho" in model.named_vars else []),
            ],
        )
    return {name: prior.prior[name].values[0] for name in prior.prior.data_vars}


def first_within_scale(
    change_natural: np.ndarray, width: np.ndarray, count: int, slack: np.ndarray | float = 0.0
) -> tuple[np.ndarray, int]:
    """The first ``count`` prior draws whose true mean changes fit the questionnaires, and how many were skipped.

    The loader refuses a mean change wider than the scale (e.g. 26 points on the 0-24 RMDQ), as it would
    for real data, and the prior's far tail reaches that. A draw is kept when ``|change| + slack <= width``
    in every arm, time and outcome (``width`` and ``slack`` broadcast along the last axis, the outcome;
    ``slack`` leaves room for the sampling error of the simulated mean). Skipping truncates the prior of
    the change, not of delta, so coverage of delta stays nominal while the skipped share is small.

    Returns
    -------
    keep
        Indices into the draws (the first axis), ``count`` of them.
    skipped
        Draws refused before the last kept one.
    """
    fits = (np.abs(change_natural) + slack <= width).reshape(len(change_natural), -1).all(axis=1)
    keep = np.flatnonzero(fits)[:count]
    if len(keep) < count:
        raise ValueError(f"only {len(keep)} of {len(fits)} prior draws fit the scales; {count} are needed")
    return keep, int(np.sum(~fits[: keep[-1] + 1]))
