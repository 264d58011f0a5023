"""``analyses``: public API (re-exported from its modules)."""

from bayes_stenosis.analyses.reproduce import (
    TOST_ALPHA,
    ReproduceResult,
    ancova_approximation,
    common_halves,
    decimals,
    half_unit,
    markdown,
    one_sample,
    p_interval,
    reproduce_table,
    run_reproduce,
    tost,
    two_sample,
    write_reproduce,
)
from bayes_stenosis.analyses.sensitivity import (
    FitConfig,
    SensitivityResult,
    margin_sets,
    plot_sensitivity,
    robustness_table,
    run_sensitivity,
)

__all__ = [
    "FitConfig",
    "ReproduceResult",
    "SensitivityResult",
    "TOST_ALPHA",
    "ancova_approximation",
    "common_halves",
    "decimals",
    "half_unit",
    "margin_sets",
    "markdown",
    "one_sample",
    "p_interval",
    "plot_sensitivity",
    "reproduce_table",
    "run_reproduce",
    "robustness_table",
    "run_sensitivity",
    "tost",
    "two_sample",
    "write_reproduce",
]
