"""The exact expected observed scores and changes of a truth, after rounding and clipping."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from bayes_stenosis.simulation.truths import ARMS, OutcomeTruth, TrialTruth


def _expected_observed(mean: float, sd: float, out: OutcomeTruth, truth: TrialTruth) -> float:
    """E[clip(round(X))] for X ~ N(mean, sd), exactly (rounding and clipping as in simulation)."""
    lo, hi = out.scale_min, out.scale_max
    if truth.round_to is None:
        if not truth.clip:
            return mean
        a, b = (lo - mean) / sd, (hi - mean) / sd
        pa, pb = stats.norm.cdf(a), stats.norm.cdf(b)
        return float(lo * pa + hi * stats.norm.sf(b) + mean * (pb - pa) + sd * (stats.norm.pdf(a) - stats.norm.pdf(b)))
    h = truth.round_to
    k = np.arange(math.floor((mean - 12 * sd) / h) - 1, math.ceil((mean + 12 * sd) / h) + 2)
    edges = (np.append(k, k[-1] + 1) - 0.5) * h
    prob = np.diff(stats.norm.cdf((edges - mean) / sd))
    values = k * h
    if truth.clip:
        values = np.clip(values, lo, hi)
    return float(np.sum(prob * values) / np.sum(prob))


def expected_scores(truth: TrialTruth) -> pd.DataFrame:
    """Exact expected observed scores and changes after rounding and clipping.

    Each score is normal before rounding and clipping, so its expectation after them is a
    one-dimensional integral: with clipping only,
    :math:`E[\\min(\\max(X, l), h)] = l\\Phi(a) + h(1 - \\Phi(b)) + \\mu(\\Phi(b) - \\Phi(a)) +
    \\sigma(\\phi(a) - \\phi(b))`, :math:`a = (l - \\mu)/\\sigma`, :math:`b = (h - \\mu)/\\sigma`;
    with rounding to :math:`h_r`, a sum over the grid :math:`k h_r` of
    :math:`P(|X - k h_r| < h_r / 2)` times the (clipped) grid value. The expected change is the
    difference of two such expectations (expectation is linear); MCAR dropout does not change it.
    Without rounding and clipping ``change`` equals the truth exactly.

    Returns
    -------
    pandas.DataFrame
        Rows ``arm, outcome, time`` with ``score`` (expected observed score) and ``change``
        (expected observed change from baseline; NaN at baseline) and ``change_truth`` (the
        truth before rounding and clipping).
    """
    transformed = truth.clip or truth.round_to is not None
    rows = []
    for arm in ARMS:
        change = truth.change(arm)
        for j, out in enumerate(truth.outcomes):
            base = _expected_observed(out.baseline_mean, out.sd, out, truth)
            rows.append(
                {
                    "arm": arm,
                    "outcome": out.name,
                    "time": 0.0,
                    "score": base,
                    "change": math.nan,
                    "change_truth": math.nan,
                }
            )
            for i, t in enumerate(truth.follow_up):
                mean = out.baseline_mean + change[i, j]
                score = _expected_observed(mean, out.sd, out, truth)
                rows.append(
                    {
                        "arm": arm,
                        "outcome": out.name,
                        "time": t,
                        "score": score,
                        "change": score - base if transformed else float(change[i, j]),
                        "change_truth": float(change[i, j]),
                    }
                )
    return pd.DataFrame(rows)
