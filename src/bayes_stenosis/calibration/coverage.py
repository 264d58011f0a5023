"""Repeated fits for calibration and coverage studies: compile once, swap data, refit.

Studies of one design (same cells, same evidence levels) give models with the same ``pm.Data``
names and shapes (:func:`bayes_stenosis.model.data_values`), so the sampler is compiled once and
each replicate only swaps the data (nutpie's ``with_data``): a replicate costs its sampling time,
not a compile (shared/research/perf.md: ~5-15 s per compile vs well under a second per small fit).

``python -m bayes_stenosis.calibration {sbc,coverage,coverage-merge,plot} ...`` runs the calibration
and coverage studies of :mod:`bayes_stenosis.calibration` (the same as ``bayes-stenosis validation ...``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
from arviz import rhat
from scipy import stats

from bayes_stenosis.inference import CompiledModel, SamplerSettings
from bayes_stenosis.model import (
    ModelInputs,
    build_model,
    check_forward_sampling,
    prepare_inputs,
    resolve_prior,
)
from bayes_stenosis.spec import ModelSpec
from bayes_stenosis.study import load_study


def model_for(
    folder: str | Path, spec: ModelSpec, prior_set: str, *, prior_sampling: bool = False
) -> tuple[pm.Model, ModelInputs]:
    """The model of a study folder (``prior_sampling``: the form for forward draws, see ``build_model``)."""
    inputs = prepare_inputs(load_study(folder), spec)
    prior = resolve_prior(spec, prior_set, inputs)
    return build_model(inputs, spec, prior, prior_sampling=prior_sampling), inputs


def binomial_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact) interval for a coverage proportion."""
    alpha = 1 - level
    lower = 0.0 if successes == 0 else stats.beta.ppf(alpha / 2, successes, trials - successes + 1)
    upper = 1.0 if successes == trials else stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes)
    return float(lower), float(upper)


@dataclass
class CoverageResult:
    """Interval coverage of each delta over replicates."""

    per_cell: pd.DataFrame  # time, outcome, covered, replicates, coverage, ci_low, ci_high
    overall: dict
    replicates: pd.DataFrame  # one row per replicate x cell: truth, lower, upper, covered, max_rhat

    def text(self) -> str:
        o = self.overall
        return (
            f"{o['prob']:.0%} interval coverage {o['coverage']:.3f} over {o['cells']} cell-replicates "
            f"({o['replicates']} trials), 95% Clopper-Pearson {o['ci_low']:.3f}-{o['ci_high']:.3f}"
        )


def coverage_study(
    make_folder: Callable[[int], tuple[Path, np.ndarray]],
    spec: ModelSpec,
    prior_set: str,
    replicates: Sequence[int],
    settings: SamplerSettings,
    prob: float = 0.9,
    cell_summary: Callable[[object, ModelInputs, Path], dict[tuple, dict]] | None = None,
) -> CoverageResult:
    """Fit each replicate's study and record whether the equal-tailed interval covers the truth.

    Parameters
    ----------
    make_folder
        ``seed -> (study folder, true delta_natural array of shape (time, outcome))``.
    replicates
        The seeds, one per simulated trial.
    cell_summary
        Optional ``(idata, inputs, folder) -> {(time, outcome): {column: value}}``: extra columns
        per replicate x cell (e.g. the reported threshold statement and a posterior probability).
    """
    fitter = None
    rows = []
    lo_q, hi_q = (1 - prob) / 2, 1 - (1 - prob) / 2
    for seed in replicates:
        folder, truth = make_folder(int(seed))
        model, inputs = model_for(folder, spec, prior_set)
        if fitter is None:
            fitter = CompiledModel(model, settings)
        idata = fitter.fit(model, seed=int(seed))
        draws = idata.posterior["delta_natural"]
        lower = draws.quantile(lo_q, dim=("chain", "draw")).values
        upper = draws.quantile(hi_q, dim=("chain", "draw")).values
        max_rhat = float(np.nanmax(rhat(idata, var_names=["delta"])["delta"].values))
        divergences = int(idata.sample_stats["diverging"].sum())
        extra = cell_summary(idata, inputs, folder) if cell_summary is not None else {}
        for i, t in enumerate(inputs.coords["time"]):
            for j, o in enumerate(inputs.coords["outcome"]):
                rows.append(
                    extra.get((t, o), {})
                    | {
                        "seed": int(seed),
                        "time": t,
                        "outcome": o,
                        "truth": float(truth[i, j]),
                        "lower": float(lower[i, j]),
                        "upper": float(upper[i, j]),
                        "covered": bool(lower[i, j] <= truth[i, j] <= upper[i, j]),
                        "max_rhat": max_rhat,
                        "divergences": divergences,
                    }
                )
    reps = pd.DataFrame(rows)
    per_cell = []
    for (t, o), sub in reps.groupby(["time", "outcome"], sort=False):
        k, n = int(sub["covered"].sum()), len(sub)
        lo, hi = binomial_interval(k, n)
        per_cell.append(
            {
                "time": t,
                "outcome": o,
                "covered": k,
                "replicates": n,
                "coverage": k / n,
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    k, n = int(reps["covered"].sum()), len(reps)
    lo, hi = binomial_interval(k, n)
    overall = {
        "prob": prob,
        "coverage": k / n,
        "ci_low": lo,
        "ci_high": hi,
        "cells": n,
        "replicates": len(replicates),
        "max_rhat": float(reps["max_rhat"].max()),
        "divergent_fits": int((reps.groupby("seed")["divergences"].first() > 0).sum()),
    }
    return CoverageResult(per_cell=pd.DataFrame(per_cell), overall=overall, replicates=reps)


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
    out = {name: prior.prior[name].values[0] for name in prior.prior.data_vars}
    return out


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


def expected_coverage_band(prob: float, n: int, level: float = 0.99) -> tuple[float, float]:
    """Range of observed coverage consistent with nominal ``prob`` over ``n`` independent cells."""
    lo = stats.binom.ppf((1 - level) / 2, n, prob) / n
    hi = stats.binom.ppf(1 - (1 - level) / 2, n, prob) / n
    return float(lo), float(hi)


__all__ = [
    "CoverageResult",
    "binomial_interval",
    "coverage_study",
    "draw_truths_from_prior",
    "expected_coverage_band",
    "first_within_scale",
    "model_for",
]


if __name__ == "__main__":  # python -m bayes_stenosis.calibration ...
    from bayes_stenosis.calibration.sbc import main

    raise SystemExit(main(prog="python -m bayes_stenosis.calibration"))
