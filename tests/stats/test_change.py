"""``stats.conversions.change``: the SD of change from baseline and the correlation it implies, checked
against values worked by hand (the arithmetic is in the comment beside each).

Tolerances: hand values are rounded to 5 significant digits and compared with ``rel=1e-4``
(rounding to 5 s.f. errs by at most 5e-5 relative). Exact hand values (e.g. a 3-4-5 triangle)
use pytest.approx's default (rel=1e-6). Round trips involve no rounding and use ``rel=1e-12``.
"""

from __future__ import annotations

import numpy as np
import pytest

from bayes_stenosis import stats as cv

HAND = 1e-4  # relative tolerance for hand values rounded to 5 significant digits
EXACT_ROUND_TRIP = 1e-12  # relative tolerance for round trips (floating-point error only)


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
