"""Conversions checked against values worked by hand (the arithmetic is in the comment beside each).

Tolerances: hand values are rounded to 5 significant digits and compared with ``rel=1e-4``
(rounding to 5 s.f. errs by at most 5e-5 relative). Exact hand values (e.g. a 3-4-5 triangle)
use pytest.approx's default (rel=1e-6). Round trips involve no rounding and use ``rel=1e-12``.
Quantiles in the comments are quoted to 6 decimals: Phi^-1(0.975) = 1.959964,
Phi^-1(0.95) = 1.644854, t(38)^-1(0.975) = 2.024394, t(10)^-1(0.975) = 2.228139.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bayes_stenosis import stats as cv

HAND = 1e-4  # relative tolerance for hand values rounded to 5 significant digits
EXACT_ROUND_TRIP = 1e-12  # relative tolerance for round trips (floating-point error only)


# ---------------------------------------------------------------------------------------------
# se_from_ci
# ---------------------------------------------------------------------------------------------


def test_se_from_ci_less_trial_normal():
    # LESS RMDQ difference -1.0 (95% CI -2.1 to 0.1):
    # width 0.1 - (-2.1) = 2.2; SE = 2.2 / (2 x 1.959964) = 2.2 / 3.919928 = 0.56123
    assert cv.se_from_ci(-2.1, 0.1) == pytest.approx(0.56123, rel=HAND)
    assert cv.se_from_ci(-2.1, 0.1, level=0.95) == pytest.approx(0.56123, rel=HAND)


def test_se_from_ci_less_trial_t38():
    # same CI read as a t interval with 38 df: SE = 2.2 / (2 x 2.024394) = 2.2 / 4.048788 = 0.54337
    assert cv.se_from_ci(-2.1, 0.1, 0.95, df=38) == pytest.approx(0.54337, rel=HAND)


def test_se_from_ci_90_percent():
    # 90% CI 1 to 3: q = Phi^-1(0.95) = 1.644854; SE = 2 / (2 x 1.644854) = 2 / 3.289708 = 0.60796
    assert cv.se_from_ci(1.0, 3.0, level=0.90) == pytest.approx(0.60796, rel=HAND)


def test_t_interval_gives_smaller_se_than_normal():
    # t quantiles exceed the normal one (2.024394 > 1.959964), so one CI implies a smaller SE
    se_normal = cv.se_from_ci(-2.1, 0.1)
    se_t = cv.se_from_ci(-2.1, 0.1, df=38)
    assert se_t < se_normal
    # fewer df -> larger quantile -> smaller SE still
    assert cv.se_from_ci(-2.1, 0.1, df=5) < se_t
    # t with infinite df is the normal
    assert cv.se_from_ci(-2.1, 0.1, df=math.inf) == pytest.approx(se_normal, rel=EXACT_ROUND_TRIP)


@pytest.mark.parametrize("df", [None, 12.0])
@pytest.mark.parametrize("level", [0.90, 0.95, 0.99])
def test_se_from_ci_round_trip_rebuilds_the_interval(level, df):
    # midpoint -/+ q x SE must give the original limits back
    low, high = -3.7, 1.3
    se = cv.se_from_ci(low, high, level, df=df)
    prob = 1 - (1 - level) / 2
    q = stats.norm.ppf(prob) if df is None else stats.t.ppf(prob, df)
    mid = (low + high) / 2
    assert mid - q * se == pytest.approx(low, rel=EXACT_ROUND_TRIP)
    assert mid + q * se == pytest.approx(high, rel=EXACT_ROUND_TRIP)


# ---------------------------------------------------------------------------------------------
# se_from_p
# ---------------------------------------------------------------------------------------------


def test_se_from_p_podichetty():
    # Podichetty 2004: estimate -0.5, two-sided P = 0.4382, normal reference:
    # q = Phi^-1(1 - 0.4382/2) = Phi^-1(0.7809) = 0.775236; SE = 0.5 / 0.775236 = 0.64496
    assert cv.se_from_p(-0.5, 0.4382) == pytest.approx(0.64496, rel=HAND)
    # the sign of the estimate does not matter
    assert cv.se_from_p(0.5, 0.4382) == cv.se_from_p(-0.5, 0.4382)


def test_se_from_p_one_sided():
    # one-sided P 0.025: q = Phi^-1(0.975) = 1.959964; SE = 1 / 1.959964 = 0.51021
    assert cv.se_from_p(1.0, 0.025, sided="one-sided") == pytest.approx(0.51021, rel=HAND)
    # and a one-sided p equals a two-sided 2p
    assert cv.se_from_p(1.0, 0.025, sided="one-sided") == pytest.approx(cv.se_from_p(1.0, 0.05), rel=EXACT_ROUND_TRIP)


def test_se_from_p_t10():
    # two-sided P 0.05 from t(10): q = 2.228139; SE = 1 / 2.228139 = 0.44881
    assert cv.se_from_p(1.0, 0.05, df=10) == pytest.approx(0.44881, rel=HAND)


@pytest.mark.parametrize("df", [None, 30.0])
def test_se_from_p_agrees_with_se_from_ci(df):
    # an interval, its SE, the two-sided P of the midpoint, and back to the SE
    se = cv.se_from_ci(-3.0, 1.0, 0.95, df=df)
    estimate = -1.0
    z = abs(estimate) / se
    p = 2 * (stats.norm.sf(z) if df is None else stats.t.sf(z, df))
    assert cv.se_from_p(estimate, p, df=df) == pytest.approx(se, rel=EXACT_ROUND_TRIP)


# ---------------------------------------------------------------------------------------------
# SDs from SEs, pooled SD
# ---------------------------------------------------------------------------------------------


def test_sd_from_se():
    # SE 2 with n 25: SD = 2 x sqrt(25) = 2 x 5 = 10 (exact)
    assert cv.sd_from_se(2.0, 25) == pytest.approx(10.0)
    # SE 0.8 with n 40: SD = 0.8 x 6.324555 = 5.0596
    assert cv.sd_from_se(0.8, 40) == pytest.approx(5.0596, rel=HAND)


def test_se_of_difference_from_sd():
    # common SD 16, 20 + 20: SE = 16 x sqrt(1/20 + 1/20) = 16 x sqrt(0.1) = 16 x 0.3162278 = 5.0596
    assert cv.se_of_difference_from_sd(16.0, 20, 20) == pytest.approx(5.0596, rel=HAND)


def test_sd_from_se_of_difference():
    # SE 2.5, 30 + 20: sqrt(1/30 + 1/20) = sqrt(5/60) = sqrt(1/12); SD = 2.5 x sqrt(12) = 5 sqrt(3) = 8.6603
    assert cv.sd_from_se_of_difference(2.5, 30, 20) == pytest.approx(8.6603, rel=HAND)


def test_sd_se_of_difference_round_trip():
    sd = 13.7
    se = cv.se_of_difference_from_sd(sd, 57, 61)
    assert cv.sd_from_se_of_difference(se, 57, 61) == pytest.approx(sd, rel=EXACT_ROUND_TRIP)


def test_pooled_sd():
    # (9 x 4^2 + 19 x 6^2) / (10 + 20 - 2) = (144 + 684) / 28 = 29.5714; sqrt = 5.4380
    assert cv.pooled_sd(4.0, 10, 6.0, 20) == pytest.approx(5.4380, rel=HAND)
    # equal SDs pool to that SD whatever the sizes: (4 x 49 + 8 x 49) / 12 = 49 -> 7 (exact)
    assert cv.pooled_sd(7.0, 5, 7.0, 9) == pytest.approx(7.0)


# ---------------------------------------------------------------------------------------------
# Wan et al. 2014
# ---------------------------------------------------------------------------------------------


def test_wan_median_iqr_n143():
    # n 143, median 13, IQR 7-16: mean = (7 + 13 + 16) / 3 = 36 / 3 = 12 (exact);
    # p = (0.75 x 143 - 0.125) / (143 + 0.25) = 107.125 / 143.25 = 0.747818;
    # Phi^-1(0.747818) = 0.667641; SD = (16 - 7) / (2 x 0.667641) = 9 / 1.335281 = 6.7402
    mean, sd = cv.mean_sd_from_median_iqr(13, 7, 16, 143)
    assert mean == pytest.approx(12.0)
    assert sd == pytest.approx(6.7402, rel=HAND)


def test_wan_median_iqr_large_n_is_iqr_over_1_349():
    # as n -> inf, p -> 0.75 and the denominator -> 2 x 0.674490 = 1.348980;
    # at n = 1e6, p is 3e-7 below 0.75, moving the SD by ~1.5e-6 relative: rel=1e-5 covers it
    _, sd = cv.mean_sd_from_median_iqr(0.0, -1.0, 1.0, 1e6)
    assert sd == pytest.approx(2 / 1.348980, rel=1e-5)


def test_wan_median_range_n143():
    # n 143, median 13, range 2-30: mean = (2 + 2 x 13 + 30) / 4 = 58 / 4 = 14.5 (exact);
    # p = (143 - 0.375) / (143 + 0.25) = 142.625 / 143.25 = 0.995637;
    # Phi^-1(0.995637) = 2.622606; SD = 28 / (2 x 2.622606) = 28 / 5.245213 = 5.3382
    mean, sd = cv.mean_sd_from_median_range(13, 2, 30, 143)
    assert mean == pytest.approx(14.5)
    assert sd == pytest.approx(5.3382, rel=HAND)


def test_wan_median_range_n50():
    # n 50, median 10, range 2-30: mean = (2 + 20 + 30) / 4 = 13 (exact);
    # p = 49.625 / 50.25 = 0.987562; Phi^-1(0.987562) = 2.243329; SD = 28 / 4.486658 = 6.2407
    mean, sd = cv.mean_sd_from_median_range(10, 2, 30, 50)
    assert mean == pytest.approx(13.0)
    assert sd == pytest.approx(6.2407, rel=HAND)


# ---------------------------------------------------------------------------------------------
# SD of change and the implied correlation
# ---------------------------------------------------------------------------------------------


def test_sd_change_odi_sd16():
    # ODI SD 16 at baseline and follow-up: sb^2 + sf^2 = 512, 2 sb sf = 512
    # r 0.50: sqrt(512 - 256) = sqrt(256) = 16 (exact)
    assert cv.sd_change(16, 16, 0.5) == pytest.approx(16.0)
    # r 0.24: sqrt(512 - 122.88) = sqrt(389.12) = 19.726
    assert cv.sd_change(16, 16, 0.24) == pytest.approx(19.726, rel=HAND)
    # r 0.73: sqrt(512 - 373.76) = sqrt(138.24) = 11.758
    assert cv.sd_change(16, 16, 0.73) == pytest.approx(11.758, rel=HAND)


def test_sd_change_unequal_sds():
    # 3-4-5: r 0 -> sqrt(9 + 16) = 5; r -1 -> 3 + 4 = 7; r 1 -> |3 - 4| = 1 (all exact)
    assert cv.sd_change(3, 4, 0.0) == pytest.approx(5.0)
    assert cv.sd_change(3, 4, -1.0) == pytest.approx(7.0)
    assert cv.sd_change(3, 4, 1.0) == pytest.approx(1.0)
    # 10, 12, r 0.6: 100 + 144 - 2 x 0.6 x 120 = 244 - 144 = 100 -> 10 (exact)
    assert cv.sd_change(10, 12, 0.6) == pytest.approx(10.0)


def test_sd_change_vectorised():
    out = cv.sd_change(16, 16, [0.5, 0.24, 0.73])
    assert isinstance(out, np.ndarray)
    assert out.shape == (3,)
    # same hand values as test_sd_change_odi_sd16
    np.testing.assert_allclose(out, [16.0, 19.726, 11.758], rtol=HAND)
    # broadcasting over SDs too: rows of baseline SDs against a row of correlations
    grid = cv.sd_change(np.array([[3.0], [16.0]]), np.array([[4.0], [16.0]]), np.array([0.0, 0.5]))
    # [[5, sqrt(25 - 12) = sqrt(13) = 3.6056], [sqrt(512) = 22.627, 16]]
    np.testing.assert_allclose(grid, [[5.0, 3.6056], [22.627, 16.0]], rtol=HAND)
    # scalars in -> a plain float out
    assert type(cv.sd_change(16, 16, 0.5)) is float


def test_correlation_from_sds_hand_value():
    # SDs 16.0 and 15.5, SD of change 11.6: r = (256 + 240.25 - 134.56) / (2 x 16 x 15.5) = 361.69 / 496 = 0.72921
    assert cv.correlation_from_sds(16.0, 15.5, 11.6) == pytest.approx(0.72921, rel=HAND)
    # 3-4-5 triangle -> r = (9 + 16 - 25) / 24 = 0 (exact)
    assert cv.correlation_from_sds(3, 4, 5) == pytest.approx(0.0, abs=1e-15)
    assert type(cv.correlation_from_sds(3, 4, 5)) is float


@pytest.mark.parametrize("r", [-0.9, -0.3, 0.0, 0.24, 0.5, 0.73, 0.99])
def test_sd_change_then_correlation_round_trip(r):
    sdc = cv.sd_change(16.0, 15.5, r)
    assert cv.correlation_from_sds(16.0, 15.5, sdc) == pytest.approx(r, rel=EXACT_ROUND_TRIP, abs=1e-14)


def test_sd_change_then_correlation_round_trip_arrays():
    r = np.array([-0.5, 0.1, 0.6, 0.95])
    sb = np.array([10.0, 16.0, 4.2, 22.0])
    sf = np.array([12.0, 15.5, 6.1, 20.0])
    np.testing.assert_allclose(cv.correlation_from_sds(sb, sf, cv.sd_change(sb, sf, r)), r, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------------


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
