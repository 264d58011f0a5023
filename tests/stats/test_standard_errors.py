"""``stats.conversions.standard_errors``: SEs from confidence intervals and P values, SDs from SEs and
the pooled SD, checked against values worked by hand (the arithmetic is in the comment beside each).

Tolerances: hand values are rounded to 5 significant digits and compared with ``rel=1e-4``
(rounding to 5 s.f. errs by at most 5e-5 relative). Exact hand values
use pytest.approx's default (rel=1e-6). Round trips involve no rounding and use ``rel=1e-12``.
Quantiles in the comments are quoted to 6 decimals: Phi^-1(0.975) = 1.959964,
Phi^-1(0.95) = 1.644854, t(38)^-1(0.975) = 2.024394, t(10)^-1(0.975) = 2.228139.
"""

from __future__ import annotations

import math

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
