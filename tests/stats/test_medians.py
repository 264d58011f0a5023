"""``stats.conversions.medians``: mean and SD from a median with its quartiles or range (Wan et al. 2014),
checked against values worked by hand (the arithmetic is in the comment beside each).

Tolerances: hand values are rounded to 5 significant digits and compared with ``rel=1e-4``
(rounding to 5 s.f. errs by at most 5e-5 relative); exact hand values use pytest.approx's default.
"""

from __future__ import annotations

import pytest

from bayes_stenosis import stats as cv

HAND = 1e-4  # relative tolerance for hand values rounded to 5 significant digits


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
