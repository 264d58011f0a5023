"""Evidence levels from simulated patients: arm summaries, between-arm contrasts and threshold statements."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from bayes_stenosis.simulation.truths import ARMS, NEW_ARM, REFERENCE_ARM, TrialTruth


def arm_arrays(patients: pd.DataFrame, truth: TrialTruth) -> dict[str, np.ndarray]:
    """Per arm, an array ``(patient, time incl. baseline, outcome)`` of scores (NaN = missing)."""
    needed = {"patient", "arm", "outcome", "time", "value"}
    if not needed <= set(patients.columns):
        raise ValueError(f"patients needs columns {sorted(needed)} (got {list(patients.columns)})")
    arms = set(patients["arm"].unique())
    if not arms <= set(ARMS) or not arms:
        raise ValueError(f"patients' arms must be {REFERENCE_ARM!r} and {NEW_ARM!r} (got {sorted(arms)})")
    if set(patients["outcome"].unique()) != set(truth.outcome_names):
        raise ValueError("patients' outcomes do not match the truth")
    if set(patients["time"].astype(float).unique()) != set(truth.times):
        raise ValueError("patients' times do not match the truth (baseline 0 and the follow-up times)")
    columns = pd.MultiIndex.from_product([truth.times, truth.outcome_names], names=["time", "outcome"])
    out = {}
    for arm in ARMS:
        sub = patients[patients["arm"] == arm]
        wide = sub.pivot(index="patient", columns=["time", "outcome"], values="value")
        wide = wide.reindex(columns=columns)
        out[arm] = wide.to_numpy(dtype=float).reshape(len(wide), len(truth.times), len(truth.outcomes))
    return out


def _source(patients: pd.DataFrame, seed: int | None) -> str:
    if seed is None:
        seed = patients.attrs.get("seed")
    if seed is None:
        raise ValueError("give seed= (the patients frame carries no attrs['seed'])")
    return f"SIMULATED (seed {int(seed)})"


def summarise_arms(
    patients: pd.DataFrame,
    truth: TrialTruth,
    *,
    kind: Literal["score", "change"],
    seed: int | None = None,
) -> pd.DataFrame:
    """Arm-level summaries, as a results table reports them (``arm_summaries.csv`` rows).

    ``kind="score"``: per arm, outcome and time (baseline included) the number of observed scores
    ``n``, their mean and SD (``ddof=1``). ``kind="change"``: per arm, outcome and follow-up time
    the same of the change :math:`y_{it} - b_i` over patients observed at both times.

    Returns
    -------
    pandas.DataFrame
        Columns ``arm, outcome, time, kind, n, mean, sd, source, note``; ``source`` is
        ``"SIMULATED (seed N)"`` with ``seed`` or ``patients.attrs["seed"]``.
    """
    if kind not in ("score", "change"):
        raise ValueError(f"kind must be 'score' or 'change' (got {kind!r})")
    source = _source(patients, seed)
    arrays = arm_arrays(patients, truth)
    rows = []
    for arm in ARMS:
        data = arrays[arm]
        for j, out in enumerate(truth.outcomes):
            for k, t in enumerate(truth.times):
                if kind == "score":
                    x = data[:, k, j]
                    note = "sample mean and SD (ddof=1) of the simulated scores"
                elif k == 0:
                    continue
                else:
                    x = data[:, k, j] - data[:, 0, j]
                    note = "sample mean and SD (ddof=1) of the simulated change from baseline (complete pairs)"
                x = x[~np.isnan(x)]
                rows.append(
                    {
                        "arm": arm,
                        "outcome": out.name,
                        "time": t,
                        "kind": kind,
                        "n": len(x),
                        "mean": float(np.mean(x)) if len(x) else math.nan,
                        "sd": float(np.std(x, ddof=1)) if len(x) > 1 else math.nan,
                        "source": source,
                        "note": note,
                    }
                )
    return pd.DataFrame(rows)


def _changes(arrays: dict[str, np.ndarray], k: int, j: int) -> dict[str, np.ndarray]:
    out = {}
    for arm in ARMS:
        d = arrays[arm][:, k, j] - arrays[arm][:, 0, j]
        out[arm] = d[~np.isnan(d)]
    return out


def _pooled_t(x_new: np.ndarray, x_ref: np.ndarray) -> tuple[float, float, float, float, float]:
    """Pooled two-sample t: estimate (new - ref), SE, df, t, two-sided p."""
    n1, n2 = len(x_new), len(x_ref)
    if n1 < 2 or n2 < 2:
        raise ValueError("a two-sample t-test needs at least 2 complete patients per arm")
    est = float(np.mean(x_new) - np.mean(x_ref))
    dof = n1 + n2 - 2
    pooled = ((n1 - 1) * np.var(x_new, ddof=1) + (n2 - 1) * np.var(x_ref, ddof=1)) / dof
    se = float(np.sqrt(pooled * (1 / n1 + 1 / n2)))
    t = est / se
    return est, se, float(dof), t, float(2 * stats.t.sf(abs(t), dof))


def _one_sample_t(x: np.ndarray) -> tuple[float, float, float, float, float]:
    """Paired t on changes: mean, SE, df, t, two-sided p."""
    n = len(x)
    if n < 2:
        raise ValueError("a paired t-test needs at least 2 complete patients")
    est = float(np.mean(x))
    se = float(np.std(x, ddof=1) / np.sqrt(n))
    t = est / se
    return est, se, float(n - 1), t, float(2 * stats.t.sf(abs(t), n - 1))


def _ancova(follow: dict[str, np.ndarray], base: dict[str, np.ndarray]) -> tuple[float, float, float, float, float]:
    """OLS ``follow-up ~ 1 + new + baseline``: arm coefficient, SE, df, t, two-sided p."""
    y = np.concatenate([follow[REFERENCE_ARM], follow[NEW_ARM]])
    b = np.concatenate([base[REFERENCE_ARM], base[NEW_ARM]])
    new = np.concatenate([np.zeros(len(follow[REFERENCE_ARM])), np.ones(len(follow[NEW_ARM]))])
    x = np.column_stack([np.ones_like(y), new, b])
    beta, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    dof = len(y) - 3
    if rank < 3 or dof < 1:
        raise ValueError("the ANCOVA design is singular or has no residual degrees of freedom")
    resid = y - x @ beta
    sigma2 = float(resid @ resid) / dof
    pinv = np.linalg.pinv(x)
    se = float(np.sqrt(sigma2 * (pinv @ pinv.T)[1, 1]))
    t = float(beta[1]) / se
    return float(beta[1]), se, float(dof), t, float(2 * stats.t.sf(abs(t), dof))


def contrasts_from_patients(
    patients: pd.DataFrame,
    truth: TrialTruth,
    *,
    method: Literal["change_t", "ancova"] = "change_t",
    ci_level: float = 0.95,
    seed: int | None = None,
) -> pd.DataFrame:
    """Between-arm contrasts per follow-up time and outcome (``contrasts.csv`` rows).

    ``method="change_t"`` (``measure = change``): the difference in mean change, new minus
    reference, :math:`\\hat\\delta = \\bar d_{\\text{new}} - \\bar d_{\\text{ref}}`, with the pooled
    two-sample t-test: :math:`s_p^2 = ((n_1 - 1)s_1^2 + (n_2 - 1)s_2^2)/(n_1 + n_2 - 2)`,
    :math:`SE = s_p\\sqrt{1/n_1 + 1/n_2}`, ``df`` :math:`= n_1 + n_2 - 2`.

    ``method="ancova"`` (``measure = ancova``): the arm coefficient of the OLS fit
    :math:`y_{it} = \\beta_0 + \\beta_1 [\\text{new}] + \\beta_2 b_i + \\varepsilon` (numpy
    ``lstsq``), :math:`SE = \\sqrt{\\hat\\sigma^2 [(X^T X)^{-1}]_{11}}`, ``df`` :math:`= n - 3`.

    Both use patients observed at baseline and at the time. CI:
    :math:`\\hat\\delta \\pm t_{df, (1 + \\text{level})/2} SE`; ``p_value`` two-sided.

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome, time, measure, direction, estimate, ci_low, ci_high, ci_level, se,
        p_value, df, source, note``; ``direction`` is ``new_minus_reference``.
    """
    if method not in ("change_t", "ancova"):
        raise ValueError(f"method must be 'change_t' or 'ancova' (got {method!r})")
    if not 0 < ci_level < 1:
        raise ValueError(f"ci_level must be in (0, 1) (got {ci_level!r})")
    source = _source(patients, seed)
    arrays = arm_arrays(patients, truth)
    contrast = _change_t_contrast if method == "change_t" else _ancova_contrast
    rows = []
    for k, t in enumerate(truth.times[1:], start=1):
        for j, out in enumerate(truth.outcomes):
            est, se, dof, p, measure, note = contrast(arrays, k, j)
            half = float(stats.t.ppf((1 + ci_level) / 2, dof)) * se
            rows.append(
                {
                    "outcome": out.name,
                    "time": t,
                    "measure": measure,
                    "direction": "new_minus_reference",
                    "estimate": est,
                    "ci_low": est - half,
                    "ci_high": est + half,
                    "ci_level": ci_level,
                    "se": se,
                    "p_value": p,
                    "df": dof,
                    "source": source,
                    "note": note,
                }
            )
    return pd.DataFrame(rows)


def _change_t_contrast(arrays: dict[str, np.ndarray], k: int, j: int) -> tuple[float, float, float, float, str, str]:
    """The pooled two-sample t on change scores of cell (time ``k``, outcome ``j``): estimate, SE, df, p,
    measure and note."""
    d = _changes(arrays, k, j)
    est, se, dof, _, p = _pooled_t(d[NEW_ARM], d[REFERENCE_ARM])
    note = (
        "pooled two-sample t-test on change scores, df = n1 + n2 - 2 "
        f"(complete pairs: {len(d[NEW_ARM])} new, {len(d[REFERENCE_ARM])} reference)"
    )
    return est, se, dof, p, "change", note


def _ancova_contrast(arrays: dict[str, np.ndarray], k: int, j: int) -> tuple[float, float, float, float, str, str]:
    """The OLS ANCOVA of cell (time ``k``, outcome ``j``) over patients seen at baseline and at the time:
    estimate, SE, df, p, measure and note."""
    follow, base = {}, {}
    for arm in ARMS:
        ok = ~np.isnan(arrays[arm][:, k, j]) & ~np.isnan(arrays[arm][:, 0, j])
        follow[arm] = arrays[arm][ok, k, j]
        base[arm] = arrays[arm][ok, 0, j]
    est, se, dof, _, p = _ancova(follow, base)
    note = (
        "OLS ANCOVA: follow-up ~ arm + baseline, df = n - 3 "
        f"(complete pairs: {len(follow[NEW_ARM])} new, "
        f"{len(follow[REFERENCE_ARM])} reference)"
    )
    return est, se, dof, p, "ancova", note


def thresholds_from_patients(
    patients: pd.DataFrame,
    truth: TrialTruth,
    *,
    alpha: float = 0.05,
    seed: int | None = None,
) -> pd.DataFrame:
    """Threshold statements, as an abstract reports them (``thresholds.csv`` rows).

    Per follow-up time and outcome:

    * between arms, the pooled two-sample t-test on change scores (as in
      :func:`contrasts_from_patients`): relation ``"<"`` when :math:`p < \\alpha`, with direction
      ``favours_new`` when the new arm's mean change is lower (lower is better) else
      ``favours_reference``; otherwise ``">"`` and no direction;
    * within each arm, the paired t-test of follow-up against baseline (one-sample t on the
      changes, df :math:`n - 1`): ``"<"`` with ``improvement`` (mean change below 0) or
      ``worsening``, or ``">"``.

    ``p_value`` holds the exact two-sided p-value.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1) (got {alpha!r})")
    source = _source(patients, seed)
    arrays = arm_arrays(patients, truth)
    rows = []
    for k, t in enumerate(truth.times[1:], start=1):
        for j, out in enumerate(truth.outcomes):
            d = _changes(arrays, k, j)
            est, _, _, _, p = _pooled_t(d[NEW_ARM], d[REFERENCE_ARM])
            note = (
                "pooled two-sample t-test on change scores "
                f"(complete pairs: {len(d[NEW_ARM])} new, {len(d[REFERENCE_ARM])} reference)"
            )
            cell = {"outcome": out.name, "time": t}
            rows.append(_statement(cell, "between", None, est, p, "two_sample_t", note, alpha, source))
            for arm in ARMS:
                est, _, _, _, p = _one_sample_t(d[arm])
                note = f"paired t-test, follow-up vs baseline ({len(d[arm])} complete pairs)"
                rows.append(_statement(cell, "within", arm, est, p, "paired_t", note, alpha, source))
    return pd.DataFrame(rows)


def _statement(
    cell: dict, comparison: str, arm: str | None, est: float, p: float, test: str, note: str, alpha: float, source: str
) -> dict:
    """One ``thresholds.csv`` row: "P<alpha" with the direction of ``est`` (lower is better) when
    ``p < alpha``, else "P>alpha" without one."""
    significant = p < alpha
    if comparison == "between":
        direction = "favours_new" if est < 0 else "favours_reference"
    else:
        direction = "improvement" if est < 0 else "worsening"
    return {
        **cell,
        "comparison": comparison,
        "arm": arm,
        "relation": "<" if significant else ">",
        "alpha": alpha,
        "direction": direction if significant else None,
        "test": test,
        "p_value": p,
        "source": source,
        "note": note,
    }
