"""Conversions reanalysts need: SEs, SDs, means and correlations from what trial reports print.

Every function is pure (no I/O, no state) and uses only numpy and scipy. They take plain floats;
``sd_change`` and ``correlation_from_sds`` also take array-likes and broadcast. Bad input raises
``ValueError`` naming the argument and its value, because a silent NaN here would travel into a
model as a plausible-looking standard error.

References
----------
.. [1] Higgins JPT, Thomas J, Chandler J, et al. (eds). *Cochrane Handbook for Systematic Reviews
   of Interventions*, version 6 (2019 onwards), chapter 6: section 6.3.1 (SE of a difference from
   a confidence interval or a P value), 6.5.2.2 (SD from the SE or CI of a group mean), 6.5.2.3
   (SD from the SE, CI or P value of a difference in means) and 6.5.2.8 (imputing SDs of change
   from baseline).
.. [2] Follmann D, Elliott P, Suh I, Cutler J. Variance imputation for overviews of clinical trials
   with continuous response. *J Clin Epidemiol* 1992;45(7):769-773.
.. [3] Wan X, Wang W, Liu J, Tong T. Estimating the sample mean and standard deviation from the
   sample size, median, range and/or interquartile range. *BMC Med Res Methodol* 2014;14:135.
   doi:10.1186/1471-2288-14-135
.. [4] Hozo SP, Djulbegovic B, Hozo I. Estimating the mean and variance from the median, range,
   and the size of a sample. *BMC Med Res Methodol* 2005;5:13.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = [
    "correlation_from_sds",
    "mean_sd_from_median_iqr",
    "mean_sd_from_median_range",
    "pooled_sd",
    "sd_change",
    "sd_from_se",
    "sd_from_se_of_difference",
    "se_from_ci",
    "se_from_p",
    "se_of_difference_from_sd",
]


# ---------------------------------------------------------------------------------------------
# Validation helpers (scalars)
# ---------------------------------------------------------------------------------------------


def _require_finite(name: str, value: float) -> None:
    # math.isfinite also rejects NaN, which comparisons alone would let through.
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number (got {value!r})")


def _require_positive(name: str, value: float) -> None:
    _require_finite(name, value)
    if not value > 0:
        raise ValueError(f"{name} must be > 0 (got {value!r})")


def _quantile(prob: float, df: float | None) -> float:
    """Quantile of the standard normal, or of Student's t with ``df`` degrees of freedom.

    ``df=None`` or ``df=inf`` gives the normal quantile (the t limit). A NaN ``df`` is an error
    rather than a silent fall-back to the normal, so a missing value cannot change the method.
    """
    if df is None or df == math.inf:
        return float(stats.norm.ppf(prob))
    if math.isnan(df) or not df > 0:
        raise ValueError(f"df must be > 0 or None (got {df!r})")
    return float(stats.t.ppf(prob, df))


# ---------------------------------------------------------------------------------------------
# Standard errors from confidence intervals and P values
# ---------------------------------------------------------------------------------------------


def se_from_ci(ci_low: float, ci_high: float, level: float = 0.95, df: float | None = None) -> float:
    """Standard error from a symmetric two-sided confidence interval.

    ``SE = (ci_high - ci_low) / (2 q)`` with ``q`` the ``1 - (1 - level) / 2`` quantile of the
    standard normal, or of Student's t with ``df`` degrees of freedom when ``df`` is given
    (Cochrane Handbook 6.3.1, 6.5.2.2-6.5.2.3 [1]_).

    Parameters
    ----------
    ci_low, ci_high : float
        Lower and upper limits; ``ci_low < ci_high``.
    level : float, default 0.95
        Confidence level, in (0, 1).
    df : float or None, default None
        Degrees of freedom of a t-based interval (e.g. ``n1 + n2 - 2`` for a two-sample
        difference of means, ``n - 1`` for a single small-group mean). ``None`` means a normal
        (Wald) interval.

    Returns
    -------
    float
        The standard error.

    Raises
    ------
    ValueError
        If the limits are not finite or not ordered, ``level`` is outside (0, 1), or ``df <= 0``.

    Notes
    -----
    Only valid on the scale where the interval is symmetric; for ratio measures convert the limits
    to the log scale first (Cochrane Handbook 6.3.2 [1]_). With ``df`` given, the same interval
    implies a smaller SE than under the normal, because the t quantile is larger.

    Examples
    --------
    >>> round(se_from_ci(-2.1, 0.1), 5)
    0.56123
    """
    _require_finite("ci_low", ci_low)
    _require_finite("ci_high", ci_high)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1) (got {level!r})")
    if not ci_low < ci_high:
        raise ValueError(f"ci_low must be < ci_high (got ci_low={ci_low!r}, ci_high={ci_high!r})")
    q = _quantile(1 - (1 - level) / 2, df)
    return float((ci_high - ci_low) / (2 * q))


def se_from_p(estimate: float, p_value: float, df: float | None = None, sided: str = "two-sided") -> float:
    """Standard error from an exact P value and the estimate it tests against zero.

    ``SE = |estimate| / q`` with ``q`` the ``1 - p/2`` (two-sided) or ``1 - p`` (one-sided)
    quantile of the standard normal, or of Student's t with ``df`` degrees of freedom when given
    (Cochrane Handbook 6.3.1, 6.5.2.3 [1]_).

    Parameters
    ----------
    estimate : float
        The estimate (e.g. a difference in means) whose test against 0 gave ``p_value``;
        non-zero. Its sign is irrelevant.
    p_value : float
        The exact P value, in (0, 1]. A value printed as an inequality ("P < 0.05") is not exact
        and gives only a bound on the SE.
    df : float or None, default None
        Degrees of freedom of a t test; ``None`` means a z (normal) test.
    sided : {"two-sided", "one-sided"}, default "two-sided"
        Whether ``p_value`` is two-sided or one-sided (in the direction of the estimate).

    Returns
    -------
    float
        The standard error.

    Raises
    ------
    ValueError
        If ``estimate`` is zero or not finite, ``p_value`` is outside (0, 1], ``sided`` is not
        recognised, ``df <= 0``, or the P value implies a test statistic of 0 or below
        (two-sided ``p = 1``, one-sided ``p >= 0.5``), from which no SE can be derived.

    Examples
    --------
    >>> round(se_from_p(-0.5, 0.4382), 5)
    0.64496
    """
    _require_finite("estimate", estimate)
    if estimate == 0:
        raise ValueError("estimate must be non-zero to derive an SE from a P value (got 0)")
    if not 0 < p_value <= 1:
        raise ValueError(f"p_value must be in (0, 1] (got {p_value!r})")
    if sided not in ("two-sided", "one-sided"):
        raise ValueError(f"sided must be 'two-sided' or 'one-sided' (got {sided!r})")
    prob = 1 - p_value / 2 if sided == "two-sided" else 1 - p_value
    q = _quantile(prob, df)
    if not q > 0:
        # |estimate| / 0 would be an infinite SE: report it instead of returning inf.
        raise ValueError(
            f"p_value={p_value!r} ({sided}) implies a test statistic of {q:g}; an SE needs a "
            "statistic > 0 (two-sided p < 1, one-sided p < 0.5)"
        )
    return float(abs(estimate) / q)


# ---------------------------------------------------------------------------------------------
# Standard deviations from standard errors
# ---------------------------------------------------------------------------------------------


def sd_from_se(se: float, n: float) -> float:
    """SD of a group from the standard error of its mean: ``SD = SE * sqrt(n)``.

    Cochrane Handbook 6.5.2.2 [1]_.

    Parameters
    ----------
    se : float
        Standard error of the group mean; > 0.
    n : float
        Number of participants in the group; > 0.

    Returns
    -------
    float
        The standard deviation.
    """
    _require_positive("se", se)
    _require_positive("n", n)
    return float(se * math.sqrt(n))


def se_of_difference_from_sd(sd: float, n1: float, n2: float) -> float:
    """SE of a difference of two independent means sharing a common SD.

    ``SE = sd * sqrt(1/n1 + 1/n2)`` (Cochrane Handbook 6.5.2.3 [1]_).

    Parameters
    ----------
    sd : float
        The common (pooled) within-group SD; > 0.
    n1, n2 : float
        Group sizes; > 0.

    Returns
    -------
    float
        The standard error of the difference.

    See Also
    --------
    sd_from_se_of_difference : the inverse.
    """
    for name, value in (("sd", sd), ("n1", n1), ("n2", n2)):
        _require_positive(name, value)
    return float(sd * math.sqrt(1 / n1 + 1 / n2))


def sd_from_se_of_difference(se: float, n1: float, n2: float) -> float:
    """Common within-group SD behind the SE of a two-sample difference in means.

    ``SD = se / sqrt(1/n1 + 1/n2)`` (Cochrane Handbook 6.5.2.3 [1]_), which assumes both groups
    share one SD, as a pooled-variance t test does.

    Parameters
    ----------
    se : float
        Standard error of the difference in means; > 0.
    n1, n2 : float
        Group sizes; > 0.

    Returns
    -------
    float
        The common standard deviation.

    See Also
    --------
    se_of_difference_from_sd : the inverse.
    """
    for name, value in (("se", se), ("n1", n1), ("n2", n2)):
        _require_positive(name, value)
    return float(se / math.sqrt(1 / n1 + 1 / n2))


def pooled_sd(sd1: float, n1: float, sd2: float, n2: float) -> float:
    """Pooled within-group SD of two groups (the denominator of a two-sample t test).

    ``sqrt(((n1 - 1) sd1^2 + (n2 - 1) sd2^2) / (n1 + n2 - 2))``.

    Parameters
    ----------
    sd1, sd2 : float
        Group SDs; > 0.
    n1, n2 : float
        Group sizes; each >= 1 and ``n1 + n2 > 2``.

    Returns
    -------
    float
        The pooled SD.

    Notes
    -----
    This is the within-group SD, not the SD of the two groups merged into one: merging (Cochrane
    Handbook Table 6.5.a [1]_) also adds the spread between the two group means.
    """
    _require_positive("sd1", sd1)
    _require_positive("sd2", sd2)
    _require_positive("n1", n1)
    _require_positive("n2", n2)
    if n1 < 1 or n2 < 1 or n1 + n2 <= 2:
        raise ValueError(f"n1 and n2 must each be >= 1 with n1 + n2 > 2 (got n1={n1!r}, n2={n2!r})")
    return float(math.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (n1 + n2 - 2)))


# ---------------------------------------------------------------------------------------------
# Mean and SD from medians (Wan et al. 2014)
# ---------------------------------------------------------------------------------------------


def _require_sample_size_for_wan(n: float) -> None:
    # Both Wan denominators are 2 Phi^-1(p(n)) with p(1) = 0.5, i.e. 0 at n = 1.
    _require_finite("n", n)
    if not n > 1:
        raise ValueError(f"n must be > 1 (got {n!r})")


def mean_sd_from_median_iqr(median: float, q1: float, q3: float, n: float) -> tuple[float, float]:
    """Mean and SD from the median and the quartiles (Wan et al. 2014, scenario C3 [3]_).

    ``mean ~ (q1 + median + q3) / 3`` and
    ``SD ~ (q3 - q1) / (2 Phi^-1((0.75 n - 0.125) / (n + 0.25)))``.

    Parameters
    ----------
    median : float
        Sample median; ``q1 <= median <= q3``.
    q1, q3 : float
        First and third quartiles; ``q1 < q3``.
    n : float
        Sample size; > 1.

    Returns
    -------
    (float, float)
        Estimated mean and SD.

    Notes
    -----
    Both estimators assume roughly normal data; with skewed data (a median far from the middle
    of the IQR) they are rough. As n grows the SD estimator tends to ``IQR / 1.349``.
    """
    for name, value in (("median", median), ("q1", q1), ("q3", q3)):
        _require_finite(name, value)
    if not q1 < q3:
        raise ValueError(f"q1 must be < q3 (got q1={q1!r}, q3={q3!r})")
    if not q1 <= median <= q3:
        raise ValueError(f"median must lie within [q1, q3] (got median={median!r}, q1={q1!r}, q3={q3!r})")
    _require_sample_size_for_wan(n)
    mean = (q1 + median + q3) / 3
    eta = 2 * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25))
    return float(mean), float((q3 - q1) / eta)


def mean_sd_from_median_range(median: float, minimum: float, maximum: float, n: float) -> tuple[float, float]:
    """Mean and SD from the median and the range (Wan et al. 2014, scenario C1 [3]_).

    ``mean ~ (minimum + 2 median + maximum) / 4`` (Hozo et al. 2005 [4]_, as used by Wan) and
    ``SD ~ (maximum - minimum) / (2 Phi^-1((n - 0.375) / (n + 0.25)))``.

    Parameters
    ----------
    median : float
        Sample median; ``minimum <= median <= maximum``.
    minimum, maximum : float
        Smallest and largest observations; ``minimum < maximum``.
    n : float
        Sample size; > 1.

    Returns
    -------
    (float, float)
        Estimated mean and SD.

    Notes
    -----
    Assumes roughly normal data. The range depends on the extremes, so this is less robust than
    the IQR version; prefer :func:`mean_sd_from_median_iqr` when the quartiles are reported.
    """
    for name, value in (("median", median), ("minimum", minimum), ("maximum", maximum)):
        _require_finite(name, value)
    if not minimum < maximum:
        raise ValueError(f"minimum must be < maximum (got minimum={minimum!r}, maximum={maximum!r})")
    if not minimum <= median <= maximum:
        raise ValueError(
            f"median must lie within [minimum, maximum] (got median={median!r}, minimum={minimum!r}, "
            f"maximum={maximum!r})"
        )
    _require_sample_size_for_wan(n)
    mean = (minimum + 2 * median + maximum) / 4
    xi = 2 * stats.norm.ppf((n - 0.375) / (n + 0.25))
    return float(mean), float((maximum - minimum) / xi)


# ---------------------------------------------------------------------------------------------
# SD of change from baseline (vectorised)
# ---------------------------------------------------------------------------------------------


def _positive_array(name: str, value: ArrayLike) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    # The negated test also catches NaN (NaN > 0 is False).
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ValueError(f"{name} must be finite and > 0 (got {value!r})")
    return arr


def _as_output(arr: np.ndarray) -> float | np.ndarray:
    # Scalars in, float out; arrays in, array out.
    return float(arr) if arr.ndim == 0 else arr


def sd_change(sd_baseline: ArrayLike, sd_followup: ArrayLike, correlation: ArrayLike) -> float | np.ndarray:
    """SD of the change from baseline from the baseline and follow-up SDs and their correlation.

    ``SD_change = sqrt(sb^2 + sf^2 - 2 r sb sf)`` (Cochrane Handbook 6.5.2.8 [1]_; Follmann et
    al. 1992 [2]_).

    Parameters
    ----------
    sd_baseline, sd_followup : float or array_like
        SDs at baseline and follow-up; finite and > 0.
    correlation : float or array_like
        Within-participant correlation between baseline and follow-up, in [-1, 1].

    Returns
    -------
    float or numpy.ndarray
        A float when all inputs are scalars, else an array of the broadcast shape.

    Notes
    -----
    With equal SDs ``s`` the SD of change equals ``s`` at ``r = 0.5``, exceeds it below 0.5 and
    falls short of it above, which is why the assumed correlation matters for change scores.
    """
    sb = _positive_array("sd_baseline", sd_baseline)
    sf = _positive_array("sd_followup", sd_followup)
    r = np.asarray(correlation, dtype=float)
    if not np.all((r >= -1) & (r <= 1)):  # also rejects NaN
        raise ValueError(f"correlation must be in [-1, 1] (got {correlation!r})")
    var = sb**2 + sf**2 - 2 * r * sb * sf
    # var >= (sb - sf)^2 >= 0 exactly; clip only the rounding error that could make it -1e-16.
    return _as_output(np.sqrt(np.maximum(var, 0.0)))


def correlation_from_sds(sd_baseline: ArrayLike, sd_followup: ArrayLike, sd_change: ArrayLike) -> float | np.ndarray:
    """Baseline-follow-up correlation implied by the baseline, follow-up and change SDs.

    The inverse of :func:`sd_change`: ``r = (sb^2 + sf^2 - sc^2) / (2 sb sf)`` (Cochrane Handbook
    6.5.2.8 [1]_), used to borrow a correlation from a trial that reports all three SDs.

    Parameters
    ----------
    sd_baseline, sd_followup : float or array_like
        SDs at baseline and follow-up; finite and > 0.
    sd_change : float or array_like
        SD of the change from baseline; finite and > 0.

    Returns
    -------
    float or numpy.ndarray
        A float when all inputs are scalars, else an array of the broadcast shape.

    Raises
    ------
    ValueError
        If an SD is not finite and positive, or the three SDs imply a correlation outside
        [-1, 1] (they cannot come from one set of data, e.g. because one is misreported).
    """
    sb = _positive_array("sd_baseline", sd_baseline)
    sf = _positive_array("sd_followup", sd_followup)
    sc = _positive_array("sd_change", sd_change)
    r = (sb**2 + sf**2 - sc**2) / (2 * sb * sf)
    if not np.all((r >= -1) & (r <= 1)):
        raise ValueError(
            f"sd_baseline={sd_baseline!r}, sd_followup={sd_followup!r} and sd_change={sd_change!r} "
            f"imply a correlation outside [-1, 1] (got {_as_output(r)!r})"
        )
    return _as_output(r)
