"""``analyses.reproduce.frequentist``: t tests and TOST from summary statistics equal scipy and
statsmodels on the raw simulated data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from bayes_stenosis.analyses import (
    one_sample,
    tost,
    two_sample,
)
from tests.analyses.raw_samples import mean_sd_n, two_arm_changes


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    ("test", "equal_var", "usevar"), [("two_sample_t", True, "pooled"), ("welch_t", False, "unequal")]
)
def test_two_sample_and_tost_from_summaries_equal_scipy_and_statsmodels_on_raw_data(seed, test, equal_var, usevar):
    x_new, x_ref = two_arm_changes(seed)
    mn, sn, nn = mean_sd_n(x_new)
    mr, sr, nr = mean_sd_n(x_ref)
    ours = two_sample(mn, sn, nn, mr, sr, nr, test=test)
    ref = stats.ttest_ind(x_new, x_ref, equal_var=equal_var)
    assert ours["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
    assert ours["p"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert ours["df"] == pytest.approx(ref.df, rel=1e-10)
    from_stats = stats.ttest_ind_from_stats(mn, sn, nn, mr, sr, nr, equal_var=equal_var)
    assert ours["p"] == pytest.approx(from_stats.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (ours["ci_low"], ours["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
    for margin in (2.0, 5.0, 12.0):
        sm_p, _, _ = ttost_ind(x_new, x_ref, -margin, margin, usevar=usevar)
        assert tost(ours["estimate"], ours["se"], ours["df"], margin) == pytest.approx(sm_p, rel=1e-9)


@pytest.mark.parametrize("seed", [4, 5])
def test_paired_t_on_the_change_equals_scipy_paired_and_statsmodels_tost(seed):
    rng = np.random.default_rng(seed)
    base = rng.normal(50, 15, 21)
    follow = base + rng.normal(-4, 9, 21)
    change = follow - base
    ours = one_sample(*mean_sd_n(change), test="paired_t")
    ref = stats.ttest_rel(follow, base)
    assert ours["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
    assert ours["p"] == pytest.approx(ref.pvalue, rel=1e-9)
    sm_p, _, _ = ttost_paired(follow, base, -6.0, 6.0)
    assert tost(ours["estimate"], ours["se"], ours["df"], 6.0) == pytest.approx(sm_p, rel=1e-9)
