"""``stats``: public API (re-exported from its modules)."""

from bayes_stenosis.stats.conversions import (
    correlation_from_sds,
    mean_sd_from_median_iqr,
    mean_sd_from_median_range,
    pooled_sd,
    sd_change,
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
