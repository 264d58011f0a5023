"""Conversions reanalysts need: SEs, SDs, means and correlations from what trial reports print.

By kind: ``standard_errors`` (SEs from confidence intervals and P values, SDs from SEs, pooled SDs),
``medians`` (mean and SD from a median with quartiles or range), ``change`` (the SD of change from
baseline and the correlation it implies); ``checks`` holds the argument checks they share.

Every function is pure (no I/O, no state) and uses only numpy and scipy. They take plain floats;
``sd_change`` and ``correlation_from_sds`` also take array-likes and broadcast. Bad input raises
``ValueError`` naming the argument and its value, because a silent NaN here would travel into a
model as a plausible-looking standard error.
"""

from bayes_stenosis.stats.conversions.change import correlation_from_sds, sd_change
from bayes_stenosis.stats.conversions.medians import mean_sd_from_median_iqr, mean_sd_from_median_range
from bayes_stenosis.stats.conversions.standard_errors import (
    pooled_sd,
    sd_from_se,
    sd_from_se_of_difference,
    se_from_ci,
    se_from_p,
    se_of_difference_from_sd,
)

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
