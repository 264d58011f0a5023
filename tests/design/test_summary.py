"""The design table's Monte Carlo intervals and the n reaching a target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_stenosis.design import clopper_pearson, target_table


def test_clopper_pearson_is_scipys_exact_interval():
    for k, n in ((0, 50), (7, 50), (50, 50)):
        ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
        lo, hi = clopper_pearson([k], [n])
        assert (lo[0], hi[0]) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_target_n_is_the_smallest_n_reaching_it():
    design = pd.DataFrame(
        {
            "scope": "joint_all",
            "time": np.nan,
            "outcome": "all",
            "n_per_arm": [40, 80, 120],
            "assurance": [0.5, 0.82, 0.9],
            "assurance_low": [0.45, 0.78, 0.86],
        }
    )
    row = target_table(design, 0.8).iloc[0]
    assert (row["n_reaching_target"], row["n_surely_reaching_target"]) == (80, 120)
    assert np.isnan(target_table(design, 0.95).iloc[0]["n_reaching_target"])
