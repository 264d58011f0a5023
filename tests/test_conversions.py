"""Conversions against values worked by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_stenosis import conversions as cv

# hand values are rounded to 5 significant digits: rel=1e-4


def test_se_from_ci_normal_less_trial():
    # LESS RMDQ difference -1.0 (95% CI -2.1 to 0.1): (0.1 - -2.1) / (2 x 1.959964) = 2.2 / 3.919928 = 0.56123
    assert cv.se_from_ci(-2.1, 0.1, 0.95) == pytest.approx(0.56123, rel=1e-4)


def test_se_from_ci_t_is_smaller_than_normal():
    # t(38) 0.975 quantile = 2.024394 > 1.959964, so the same CI implies a smaller SE
    se_t = cv.se_from_ci(-2.1, 0.1, 0.95, df=38)
    assert se_t == pytest.approx(2.2 / (2 * 2.024394), rel=1e-5)
    assert se_t < cv.se_from_ci(-2.1, 0.1, 0.95)


def test_se_from_ci_90_percent():
    # 90% CI: q = 1.644854; (3 - 1) / (2 x 1.644854) = 0.60796
    assert cv.se_from_ci(1.0, 3.0, 0.90) == pytest.approx(0.60796, rel=1e-4)


def test_se_from_p_podichetty():
    # Podichetty 2004: estimate -0.5 (derived: -2.9 - -2.4), two-sided P = 0.4382
    # q = Phi^-1(1 - 0.2191) = Phi^-1(0.7809) = 0.77524; SE = 0.5 / 0.77524 = 0.64496
    assert cv.se_from_p(-0.5, 0.4382) == pytest.approx(0.64496, rel=1e-4)


def test_se_from_p_one_sided_and_t():
    # one-sided p 0.025 -> q = 1.959964 -> SE = 1 / 1.959964 = 0.51021
    assert cv.se_from_p(1.0, 0.025, sided="one-sided") == pytest.approx(0.51021, rel=1e-4)
    # two-sided p 0.05 with df 10 -> q = t(10) 0.975 = 2.228139 -> SE = 0.44880
    assert cv.se_from_p(1.0, 0.05, df=10) == pytest.approx(0.44880, rel=1e-4)


def test_round_trip_ci_and_p():
    se = cv.se_from_ci(-3.0, 1.0, 0.95, df=30)
    estimate = -1.0
    # the two-sided p of estimate/se under t(30), fed back, gives the same SE
    from scipy import stats

    p = 2 * stats.t.sf(abs(estimate) / se, 30)
    assert cv.se_from_p(estimate, p, df=30) == pytest.approx(se, rel=1e-10)


def test_sd_and_se_relations():
    # SE 2 with n 25 -> SD 10; a common SD of 16 with 20 + 20 -> SE 16 x sqrt(0.1) = 5.0596
    assert cv.sd_from_se(2.0, 25) == pytest.approx(10.0)
    assert cv.se_of_difference_from_sd(16.0, 20, 20) == pytest.approx(5.0596, rel=1e-4)
    assert cv.sd_from_se_of_difference(5.0596, 20, 20) == pytest.approx(16.0, rel=1e-4)
    # pooled SD: ((9 x 4^2) + (19 x 6^2)) / 28 = (144 + 684) / 28 = 29.571 -> 5.4380
    assert cv.pooled_sd(4.0, 10, 6.0, 20) == pytest.approx(5.4380, rel=1e-4)


def test_sd_change_hatakka_illustration():
    # ODI SD 16 at both times (methods.md illustration): r 0.5 -> 16.0; r 0.24 -> sqrt(512 x 0.76) = 19.726;
    # r 0.73 -> sqrt(512 x 0.27) = 11.758
    assert cv.sd_change(16, 16, 0.5) == pytest.approx(16.0)
    assert cv.sd_change(16, 16, 0.24) == pytest.approx(19.726, rel=1e-4)
    assert cv.sd_change(16, 16, 0.73) == pytest.approx(11.758, rel=1e-4)
    np.testing.assert_allclose(cv.sd_change(16, 16, np.array([0.5, 0.24])), [16.0, 19.7256], rtol=1e-4)


def test_correlation_round_trip():
    # Hatakka O1: SDs 16.0 and 15.5, SD of change 11.6 -> r = (256 + 240.25 - 134.56) / (2 x 16 x 15.5) = 0.72921
    r = cv.correlation_from_sds(16.0, 15.5, 11.6)
    assert r == pytest.approx(0.72921, rel=1e-4)
    assert cv.sd_change(16.0, 15.5, r) == pytest.approx(11.6)


def test_wan_median_iqr():
    # n 143, median 13, IQR 7-16 (R3 in reference_sds.md): mean = 36/3 = 12;
    # z = Phi^-1((0.75 x 143 - 0.125) / 143.25) = Phi^-1(0.74782) = 0.66773; SD = 9 / 1.33546 = 6.7393
    mean, sd = cv.mean_sd_from_median_iqr(13, 7, 16, 143)
    assert mean == pytest.approx(12.0)
    assert sd == pytest.approx(6.7393, rel=1e-3)


def test_wan_median_range():
    # n 50, median 10, range 2-30: mean = (2 + 20 + 30) / 4 = 13;
    # z = Phi^-1((50 - 0.375) / 50.25) = Phi^-1(0.98756) = 2.2423; SD = 28 / 4.4846 = 6.2436
    mean, sd = cv.mean_sd_from_median_range(10, 2, 30, 50)
    assert mean == pytest.approx(13.0)
    assert sd == pytest.approx(6.2436, rel=1e-3)


@pytest.mark.parametrize(
    "call",
    [
        lambda: cv.se_from_ci(1, 0),
        lambda: cv.se_from_ci(0, 1, level=1.2),
        lambda: cv.se_from_p(0.0, 0.5),
        lambda: cv.se_from_p(1.0, 0.0),
        lambda: cv.se_from_p(1.0, 1.0),
        lambda: cv.sd_from_se(-1, 10),
        lambda: cv.sd_change(16, 16, 1.5),
        lambda: cv.sd_change(-1, 16, 0.5),
        lambda: cv.correlation_from_sds(1, 1, 3),
        lambda: cv.mean_sd_from_median_iqr(5, 7, 16, 10),
    ],
)
def test_bad_inputs_raise(call):
    with pytest.raises(ValueError):
        call()
