"""From the trials' rows to the design table: assurance and the probability of a wrong "equivalent" per
per-arm n and scope, with exact (Clopper-Pearson) Monte Carlo intervals, and the n reaching a target."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

KEYS = ["scope", "time", "outcome", "n_per_arm"]
#: Coverage of the Monte Carlo intervals of every share in the design table.
INTERVAL_PROB = 0.95


def clopper_pearson(k: np.ndarray, n: np.ndarray, prob: float = INTERVAL_PROB) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial interval of ``k`` successes in ``n`` trials (NaN where ``n`` is 0)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    a = (1 - prob) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k > 0, stats.beta.ppf(a, k, n - k + 1), 0.0)
        hi = np.where(k < n, stats.beta.ppf(1 - a, k + 1, n - k), 1.0)
    bad = n <= 0
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def design_table(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per scope x cell x per-arm n.

    Columns: ``trials``; ``assurance`` = P(declared equivalent) with its interval; ``prob_truth_inside``
    (the design prior's probability that the truth is inside the margin(s)); ``prob_wrong_equivalent`` =
    P(declared equivalent and the truth beyond a margin) with its interval; ``trials_truth_beyond`` and
    ``prob_equivalent_given_beyond`` = P(declared | truth beyond), the rule's error rate where the truth is
    not equivalent (NaN when no trial had such a truth).
    """
    t = trials.copy()
    t["wrong"] = t["declared_equivalent"] * (1 - t["truth_inside"])
    t["beyond"] = 1 - t["truth_inside"]
    g = t.groupby(KEYS, sort=False, dropna=False)
    out = g.agg(
        trials=("trial", "nunique"),
        declared=("declared_equivalent", "sum"),
        inside=("truth_inside", "sum"),
        wrong=("wrong", "sum"),
        beyond=("beyond", "sum"),
    ).reset_index()
    n = out["trials"].to_numpy()
    out["assurance"] = out["declared"] / n
    out["assurance_low"], out["assurance_high"] = clopper_pearson(out["declared"], n)
    out["prob_truth_inside"] = out["inside"] / n
    out["prob_wrong_equivalent"] = out["wrong"] / n
    out["prob_wrong_equivalent_low"], out["prob_wrong_equivalent_high"] = clopper_pearson(out["wrong"], n)
    out["trials_truth_beyond"] = out["beyond"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["prob_equivalent_given_beyond"] = np.where(out["beyond"] > 0, out["wrong"] / out["beyond"], np.nan)
    out["interval_prob"] = INTERVAL_PROB
    order = {"cell": 0, "joint_time": 1, "joint_all": 2}
    out = out.assign(_order=out["scope"].map(order)).sort_values(["_order", "time", "n_per_arm"], kind="stable")
    return out.drop(columns=["_order", "declared", "inside", "wrong", "beyond"]).reset_index(drop=True)


def target_table(design: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per scope x cell: the smallest per-arm n of the grid whose assurance reaches ``target``
    (``n_reaching_target``), and the smallest whose interval's lower end does (``n_surely_reaching_target``:
    the Monte Carlo error cannot put it under); NaN when no n of the grid does."""
    rows = []
    for (scope, time, outcome), d in design.groupby(KEYS[:3], sort=False, dropna=False):
        d = d.sort_values("n_per_arm")
        point = d.loc[d["assurance"] >= target, "n_per_arm"]
        sure = d.loc[d["assurance_low"] >= target, "n_per_arm"]
        rows.append(
            {
                "scope": scope,
                "time": time,
                "outcome": outcome,
                "target_assurance": target,
                "n_reaching_target": float(point.min()) if len(point) else np.nan,
                "n_surely_reaching_target": float(sure.min()) if len(sure) else np.nan,
                "assurance_at_largest_n": float(d["assurance"].iloc[-1]),
                "largest_n": int(d["n_per_arm"].iloc[-1]),
            }
        )
    return pd.DataFrame(rows)
