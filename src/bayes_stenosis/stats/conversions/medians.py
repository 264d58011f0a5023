"""Mean and SD from a median with its quartiles or its range (Wan et al. 2014).

References
----------
.. [1] Wan X, Wang W, Liu J, Tong T. Estimating the sample mean and standard deviation from the
   sample size, median, range and/or interquartile range. *BMC Med Res Methodol* 2014;14:135.
   doi:10.1186/1471-2288-14-135
.. [2] Hozo SP, Djulbegovic B, Hozo I. Estimating the mean and variance from the median, range,
   and the size of a sample. *BMC Med Res Methodol* 2005;5:13.
"""

from __future__ import annotations

from scipy import stats

from bayes_stenosis.stats.conversions.checks import require_finite

__all__ = ["mean_sd_from_median_iqr", "mean_sd_from_median_range"]


def _require_sample_size_for_wan(n: float) -> None:
    # Both Wan denominators are 2 Phi^-1(p(n)) with p(1) = 0.5, i.e. 0 at n = 1.
    require_finite("n", n)
    if not n > 1:
        raise ValueError(f"n must be > 1 (got {n!r})")


def mean_sd_from_median_iqr(median: float, q1: float, q3: float, n: float) -> tuple[float, float]:
    """Mean and SD from the median and the quartiles (Wan et al. 2014, scenario C3 [1]_).

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
        require_finite(name, value)
    if not q1 < q3:
        raise ValueError(f"q1 must be < q3 (got q1={q1!r}, q3={q3!r})")
    if not q1 <= median <= q3:
        raise ValueError(f"median must lie within [q1, q3] (got median={median!r}, q1={q1!r}, q3={q3!r})")
    _require_sample_size_for_wan(n)
    mean = (q1 + median + q3) / 3
    eta = 2 * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25))
    return float(mean), float((q3 - q1) / eta)


def mean_sd_from_median_range(median: float, minimum: float, maximum: float, n: float) -> tuple[float, float]:
    """Mean and SD from the median and the range (Wan et al. 2014, scenario C1 [1]_).

    ``mean ~ (minimum + 2 median + maximum) / 4`` (Hozo et al. 2005 [2]_, as used by Wan) and
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
        require_finite(name, value)
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
