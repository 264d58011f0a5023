"""Bad input to every conversion raises ``ValueError`` naming the argument and its value
(``stats.conversions.checks`` and each function's own checks)."""

from __future__ import annotations

import pytest

from bayes_stenosis import stats as cv


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(
            lambda: cv.se_from_ci(1, 0), r"ci_low must be < ci_high \(got ci_low=1, ci_high=0\)", id="ci-reversed"
        ),
        pytest.param(lambda: cv.se_from_ci(1, 1), "ci_low must be < ci_high", id="ci-zero-width"),
        pytest.param(lambda: cv.se_from_ci(0, 1, level=1.2), r"level .*1\.2", id="level>1"),
        pytest.param(lambda: cv.se_from_ci(0, 1, level=0.0), r"level .*0\.0", id="level=0"),
        pytest.param(lambda: cv.se_from_ci(float("nan"), 1), "ci_low .*nan", id="ci-nan"),
        pytest.param(lambda: cv.se_from_ci(0, 1, df=0), r"df .*got 0\)", id="df=0"),
        pytest.param(lambda: cv.se_from_ci(0, 1, df=float("nan")), "df .*nan", id="df-nan"),
        pytest.param(lambda: cv.se_from_p(0.0, 0.5), "estimate must be non-zero", id="estimate=0"),
        pytest.param(lambda: cv.se_from_p(1.0, 0.0), r"p_value .*got 0\.0", id="p=0"),
        pytest.param(lambda: cv.se_from_p(1.0, 1.5), r"p_value .*got 1\.5", id="p>1"),
        pytest.param(lambda: cv.se_from_p(1.0, 1.0), "p_value=1.0 .*test statistic", id="p=1"),
        pytest.param(lambda: cv.se_from_p(1.0, 0.6, sided="one-sided"), "p_value=0.6", id="one-sided-p>0.5"),
        pytest.param(lambda: cv.se_from_p(1.0, 0.05, sided="two"), "sided .*'two'", id="sided-unknown"),
        pytest.param(lambda: cv.sd_from_se(-1, 10), r"se must be > 0 \(got -1\)", id="se<0"),
        pytest.param(lambda: cv.sd_from_se(1, 0), r"n must be > 0 \(got 0\)", id="n=0"),
        pytest.param(lambda: cv.se_of_difference_from_sd(0, 10, 10), r"sd must be > 0 \(got 0\)", id="sd=0"),
        pytest.param(lambda: cv.sd_from_se_of_difference(1, 10, -3), r"n2 must be > 0 \(got -3\)", id="n2<0"),
        pytest.param(lambda: cv.pooled_sd(-4, 10, 6, 20), r"sd1 must be > 0 \(got -4\)", id="sd1<0"),
        pytest.param(lambda: cv.pooled_sd(4, 1, 6, 1), "n1 \\+ n2 > 2", id="pooled-n-too-small"),
        pytest.param(lambda: cv.sd_change(16, 16, 1.5), r"correlation .*got 1\.5", id="r>1"),
        pytest.param(lambda: cv.sd_change(16, 16, [0.5, -1.2]), r"correlation .*-1\.2", id="r-array<-1"),
        pytest.param(lambda: cv.sd_change(-1, 16, 0.5), r"sd_baseline .*got -1\)", id="sd_baseline<0"),
        pytest.param(lambda: cv.sd_change(16, 0, 0.5), r"sd_followup .*got 0\)", id="sd_followup=0"),
        pytest.param(lambda: cv.correlation_from_sds(1, 1, 3), "imply a correlation outside", id="r-implied>1"),
        pytest.param(lambda: cv.correlation_from_sds(1, 1, -3), r"sd_change .*got -3\)", id="sd_change<0"),
        pytest.param(lambda: cv.mean_sd_from_median_iqr(5, 7, 16, 10), "median=5", id="median-below-q1"),
        pytest.param(lambda: cv.mean_sd_from_median_iqr(7, 7, 7, 10), "q1 must be < q3", id="iqr-zero"),
        pytest.param(lambda: cv.mean_sd_from_median_iqr(10, 7, 16, 1), r"n must be > 1 \(got 1\)", id="iqr-n=1"),
        pytest.param(lambda: cv.mean_sd_from_median_range(40, 2, 30, 50), "median=40", id="median-above-max"),
        pytest.param(lambda: cv.mean_sd_from_median_range(10, 30, 2, 50), "minimum must be < maximum", id="range-rev"),
        pytest.param(lambda: cv.mean_sd_from_median_range(10, 2, 30, 0.5), r"n must be > 1", id="range-n<1"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
