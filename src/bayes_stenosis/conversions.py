"""Conversions every reanalyst needs: standard errors, SDs and correlations from what papers report.

All functions are pure and work on plain floats (the SD-of-change functions also on arrays).
References:

* Cochrane Handbook v6, section 6.5.2 (SE from a CI or a p-value; SD of change from baseline and
  follow-up SDs and a correlation, section 6.5.2.8; Follmann et al. 1992).
* Wan X, Wang W, Liu J, Tong T. BMC Med Res Methodol 2014;14:135 (mean and SD from the median
  with the IQR or the range).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def _quantile(prob: float, df: float | None) -> float:
    """Normal quantile, or Student-t with ``df`` degrees of freedom."""
    if df is None or not math.isfinite(df):
        return float(stats.norm.ppf(prob))
    if df <= 0:
        raise ValueError(f"df must be > 0 (got {df})")
    return float(stats.t.ppf(prob, df))


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0 (got {value})")


def se_from_ci(ci_low: float, ci_high: float, level: float = 0.95, df: float | None = None) -> float:
    """SE from a two-sided confidence interval: (high - low) / (2 q), q the normal (or t) quantile."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1) (got {level})")
    if not ci_low < ci_high:
        raise ValueError(f"ci_low must be below ci_high (got {ci_low} and {ci_high})")
    return (ci_high - ci_low) / (2 * _quantile(1 - (1 - level) / 2, df))


def se_from_p(estimate: float, p_value: float, df: float | None = None, sided: str = "two-sided") -> float:
    """SE from an exact p-value and its estimate: |estimate| / q, q the quantile of the test statistic.

    For a two-sided p, q = quantile(1 - p/2); for a one-sided p, q = quantile(1 - p).
    """
    if not 0 < p_value <= 1:
        raise ValueError(f"p_value must be in (0, 1] (got {p_value})")
    if estimate == 0:
        raise ValueError("estimate must be non-zero to derive an SE from a p-value")
    if sided not in ("two-sided", "one-sided"):
        raise ValueError(f"sided must be 'two-sided' or 'one-sided' (got {sided!r})")
    prob = 1 - p_value / 2 if sided == "two-sided" else 1 - p_value
    q = _quantile(prob, df)
    if not q > 0:
        raise ValueError(f"p_value {p_value} gives a test statistic of 0: no SE can be derived")
    return abs(estimate) / q


def sd_from_se(se: float, n: float) -> float:
    """SD behind the SE of a mean: SE x sqrt(n)."""
    _positive("se", se)
    _positive("n", n)
    return se * math.sqrt(n)


def se_of_difference_from_sd(sd: float, n1: float, n2: float) -> float:
    """SE of a difference of two means with a common SD: sd x sqrt(1/n1 + 1/n2)."""
    for name, value in (("sd", sd), ("n1", n1), ("n2", n2)):
        _positive(name, value)
    return sd * math.sqrt(1 / n1 + 1 / n2)


def sd_from_se_of_difference(se: float, n1: float, n2: float) -> float:
    """Common SD behind the SE of a two-sample difference: se / sqrt(1/n1 + 1/n2)."""
    for name, value in (("se", se), ("n1", n1), ("n2", n2)):
        _positive(name, value)
    return se / math.sqrt(1 / n1 + 1 / n2)


def pooled_sd(sd1: float, n1: float, sd2: float, n2: float) -> float:
    """Pooled SD of two groups: sqrt(((n1-1) sd1^2 + (n2-1) sd2^2) / (n1 + n2 - 2))."""
    for name, value in (("sd1", sd1), ("sd2", sd2)):
        _positive(name, value)
    if not (n1 >= 1 and n2 >= 1 and n1 + n2 > 2):
        raise ValueError(f"need n1, n2 >= 1 and n1 + n2 > 2 (got {n1}, {n2})")
    return math.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (n1 + n2 - 2))


def mean_sd_from_median_iqr(median: float, q1: float, q3: float, n: float) -> tuple[float, float]:
    """Mean and SD from the median and the quartiles (Wan et al. 2014, scenario C3).

    mean ~ (q1 + median + q3) / 3; SD ~ (q3 - q1) / (2 Phi^-1((0.75 n - 0.125) / (n + 0.25))).
    """
    if not q1 <= median <= q3:
        raise ValueError(f"need q1 <= median <= q3 (got {q1}, {median}, {q3})")
    _positive("n", n)
    mean = (q1 + median + q3) / 3
    sd = (q3 - q1) / (2 * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25)))
    return float(mean), float(sd)


def mean_sd_from_median_range(median: float, minimum: float, maximum: float, n: float) -> tuple[float, float]:
    """Mean and SD from the median and the range (Wan et al. 2014, scenario C1).

    mean ~ (min + 2 median + max) / 4; SD ~ (max - min) / (2 Phi^-1((n - 0.375) / (n + 0.25))).
    """
    if not minimum <= median <= maximum:
        raise ValueError(f"need minimum <= median <= maximum (got {minimum}, {median}, {maximum})")
    _positive("n", n)
    mean = (minimum + 2 * median + maximum) / 4
    sd = (maximum - minimum) / (2 * stats.norm.ppf((n - 0.375) / (n + 0.25)))
    return float(mean), float(sd)


def sd_change(sd_baseline, sd_followup, correlation):
    """SD of the change from baseline: sqrt(sb^2 + sf^2 - 2 r sb sf) (Cochrane Handbook 6.5.2.8)."""
    sb, sf, r = (np.asarray(x, dtype=float) for x in (sd_baseline, sd_followup, correlation))
    if np.any(sb <= 0) or np.any(sf <= 0):
        raise ValueError("sd_baseline and sd_followup must be > 0")
    if np.any(np.abs(r) > 1):
        raise ValueError(f"correlation must be in [-1, 1] (got {correlation})")
    out = np.sqrt(sb**2 + sf**2 - 2 * r * sb * sf)
    return float(out) if out.ndim == 0 else out


def correlation_from_sds(sd_baseline: float, sd_followup: float, sd_of_change: float) -> float:
    """Baseline-follow-up correlation implied by three SDs: (sb^2 + sf^2 - sc^2) / (2 sb sf)."""
    for name, value in (
        ("sd_baseline", sd_baseline),
        ("sd_followup", sd_followup),
        ("sd_of_change", sd_of_change),
    ):
        _positive(name, value)
    r = (sd_baseline**2 + sd_followup**2 - sd_of_change**2) / (2 * sd_baseline * sd_followup)
    if not -1 <= r <= 1:
        raise ValueError(f"these SDs imply a correlation outside [-1, 1] ({r:.3f})")
    return float(r)
