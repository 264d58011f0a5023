"""Standard errors and standard deviations from what a trial report prints: a confidence interval,
an exact P value, the SE of a group mean or of a difference, two group SDs.

References
----------
.. [1] Higgins JPT, Thomas J, Chandler J, et al. (eds). *Cochrane Handbook for Systematic Reviews
   of Interventions*, version 6 (2019 onwards), chapter 6: section 6.3.1 (SE of a difference from
   a confidence interval or a P value), 6.5.2.2 (SD from the SE or CI of a group mean) and 6.5.2.3
   (SD from the SE, CI or P value of a difference in means).
"""

from __future__ import annotations

import math

from scipy import stats

from bayes_stenosis.stats.conversions.checks import require_finite, require_positive

__all__ = [
    "pooled_sd",
    "sd_from_se",
    "sd_from_se_of_difference",
    "se_from_ci",
    "se_from_p",
    "se_of_difference_from_sd",
]


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
    require_finite("ci_low", ci_low)
    require_finite("ci_high", ci_high)
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
    require_finite("estimate", estimate)
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
    require_positive("se", se)
    require_positive("n", n)
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
        require_positive(name, value)
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
        require_positive(name, value)
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
    require_positive("sd1", sd1)
    require_positive("sd2", sd2)
    require_positive("n1", n1)
    require_positive("n2", n2)
    if n1 < 1 or n2 < 1 or n1 + n2 <= 2:
        raise ValueError(f"n1 and n2 must each be >= 1 with n1 + n2 > 2 (got n1={n1!r}, n2={n2!r})")
    return float(math.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (n1 + n2 - 2)))
