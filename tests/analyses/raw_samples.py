"""Raw simulated change scores for the reproduction tests (imported by them; not a test module): the
frequentist tests computed from summaries are checked against scipy and statsmodels on these samples."""

from __future__ import annotations

import numpy as np


def two_arm_changes(seed, n_new=23, n_ref=17, shift=-3.0, sd_new=14.0, sd_ref=10.0):
    """Normal change scores of the new arm (mean -10 + ``shift``) and the reference arm (mean -10)."""
    rng = np.random.default_rng(seed)
    return rng.normal(-10 + shift, sd_new, n_new), rng.normal(-10, sd_ref, n_ref)


def mean_sd_n(x):
    """Sample mean, SD (n - 1) and size: what a paper reports of a sample."""
    return float(np.mean(x)), float(np.std(x, ddof=1)), len(x)
