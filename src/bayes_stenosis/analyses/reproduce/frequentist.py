r"""The published frequentist tests in summary-statistic form (checked against scipy/statsmodels in the tests).

Difference = new minus reference; lower or higher is better does not change a test.

* two-sample t (pooled SD), Welch t (Welch-Satterthwaite df) on change scores, from per-arm
  ``n, mean, sd`` of the change (``scipy.stats.ttest_ind_from_stats``);
* from baseline and follow-up scores: the t-test on follow-up scores (exact from the data), the
  t-test on change with :math:`SD_{change} = \sqrt{SD_b^2 + SD_f^2 - 2\rho SD_b SD_f}` and an
  ANCOVA approximation, :math:`\hat d = \Delta_f - \rho\,(SD_f/SD_b)\,\Delta_b`,
  :math:`SE = SD_f\sqrt{1-\rho^2}\sqrt{1/n_1 + 1/n_2}`, df :math:`n_1 + n_2 - 3` (Cochrane Handbook
  6.5.2.8; Clifton & Clifton, Trials 2019); both need :math:`\rho`, taken as the mean of the
  spec's Beta prior for the instrument and labelled as an assumption;
* paired t within an arm on the change (:math:`t = \bar c / (s_c/\sqrt n)`, df n - 1);
* two one-sided tests (TOST) for equivalence at the margin :math:`\pm m`:
  :math:`p_{TOST} = \max\{P(T_{df} > (\hat d + m)/SE),\ P(T_{df} < (\hat d - m)/SE)\}`;
  equivalence is shown at level alpha when :math:`p_{TOST} < \alpha`, i.e. the
  :math:`1 - 2\alpha` interval lies inside :math:`\pm m` (statsmodels ``ttost_ind`` on the same data
  gives the same numbers; tests/analyses/test_reproduce_frequentist.py).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = [
    "TOST_ALPHA",
    "ancova_approximation",
    "one_sample",
    "reference_distribution",
    "result_from_se",
    "tost",
    "two_sample",
]

TOST_ALPHA = 0.05


def two_sample(mean_new, sd_new, n_new, mean_ref, sd_ref, n_ref, test: str) -> dict:
    """Difference new - reference with SE, df, t and two-sided p for ``two_sample_t``, ``welch_t``
    or ``normal`` (pooled-SD SE, normal reference)."""
    d = mean_new - mean_ref
    if test == "welch_t":
        a, b = sd_new**2 / n_new, sd_ref**2 / n_ref
        se = math.sqrt(a + b)
        dof = (a + b) ** 2 / (a**2 / (n_new - 1) + b**2 / (n_ref - 1))
    else:
        pooled = math.sqrt(((n_new - 1) * sd_new**2 + (n_ref - 1) * sd_ref**2) / (n_new + n_ref - 2))
        se = pooled * math.sqrt(1 / n_new + 1 / n_ref)
        dof = n_new + n_ref - 2 if test == "two_sample_t" else math.inf
    return result_from_se(d, se, dof)


def one_sample(mean, sd, n, test: str = "paired_t") -> dict:
    """Mean change against 0 (paired t on the change; ``normal``: z)."""
    se = sd / math.sqrt(n)
    return result_from_se(mean, se, n - 1 if test == "paired_t" else math.inf)


def reference_distribution(dof):
    """Student's t with ``dof`` degrees of freedom, or the standard normal for an infinite ``dof``."""
    return stats.norm if not np.isfinite(dof) else stats.t(dof)


def result_from_se(d: float, se: float, dof: float) -> dict:
    """Estimate, SE, df, statistic, two-sided p and 95% CI of a difference ``d`` with standard error ``se``."""
    t = d / se
    p = float(2 * reference_distribution(dof).sf(abs(t)))
    q = float(reference_distribution(dof).ppf(0.975))
    return {"estimate": d, "se": se, "df": dof, "statistic": t, "p": p, "ci_low": d - q * se, "ci_high": d + q * se}


def tost(d: float, se: float, dof: float, margin: float) -> float:
    """TOST p-value for equivalence within (-margin, margin)."""
    dist = reference_distribution(dof)
    p_lower = float(dist.sf((d + margin) / se))  # H0: d <= -m
    p_upper = float(dist.cdf((d - margin) / se))  # H0: d >= m
    return max(p_lower, p_upper)


def ancova_approximation(
    base_new, fu_new, sd_b_new, sd_f_new, n_new, base_ref, fu_ref, sd_b_ref, sd_f_ref, n_ref, rho
) -> dict:
    """Baseline-adjusted difference from summary statistics with an assumed correlation ``rho``."""
    pooled_b = math.sqrt(((n_new - 1) * sd_b_new**2 + (n_ref - 1) * sd_b_ref**2) / (n_new + n_ref - 2))
    pooled_f = math.sqrt(((n_new - 1) * sd_f_new**2 + (n_ref - 1) * sd_f_ref**2) / (n_new + n_ref - 2))
    slope = rho * pooled_f / pooled_b
    d = (fu_new - fu_ref) - slope * (base_new - base_ref)
    se = pooled_f * math.sqrt(1 - rho**2) * math.sqrt(1 / n_new + 1 / n_ref)
    return result_from_se(d, se, n_new + n_ref - 3)
