"""Rank statistics of SBC: thinning of the posterior draws and the chi-square test of uniform ranks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_stenosis.calibration import thin_draws, uniformity


def test_uniformity_test_bins_ranks_and_flags_a_u_shape():
    keep, bins = 49, 10
    uniform = pd.DataFrame({"quantity": "x", "rank": np.tile(np.arange(keep + 1), 4), "ess_bulk": 1000.0})
    result = uniformity(uniform, keep, bins)
    assert result["counts"].iloc[0] == [20] * bins
    assert result["p_value"].iloc[0] == pytest.approx(1.0)
    u_shape = pd.DataFrame({"quantity": "x", "rank": np.r_[np.zeros(40), np.full(40, keep)], "ess_bulk": 10.0})
    result = uniformity(u_shape, keep, bins)
    assert result["counts"].iloc[0][0] == 40 and result["counts"].iloc[0][-1] == 40
    assert result["p_value"].iloc[0] < 1e-20
    assert result["share_ess_below_L"].iloc[0] == 1.0
    with pytest.raises(ValueError, match="divisible"):
        uniformity(uniform, 50, bins)


def test_thinning_keeps_evenly_spaced_draws_over_pooled_chains():
    draws = np.arange(2 * 100).reshape(2, 100)
    kept = thin_draws(draws, 50)
    assert kept.shape == (50,)
    assert kept[0] == 0 and kept[-1] == 199
    assert np.all(np.diff(kept) > 0)
