"""``model.terms.threshold``: the test assumed behind a between-arm statement and the SD ratios."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest

from bayes_stenosis.model import build_model, prepare_inputs, resolve_prior
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import spec_variant, write_study


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    row = {"outcome": "ODI", "time": 4, "comparison": "between", "relation": ">", "alpha": 0.05, "test": "two_sample_t"}
    return write_study(tmp_path_factory.mktemp("thr") / "s", n_per_arm=(20, 30), rows={"thresholds.csv": [row]})


@pytest.mark.parametrize("test", ["change", "follow_up", "ancova"])
def test_noncentrality_uses_the_sd_of_the_test_assumed(folder, test):
    """lambda = delta / (sigma x sqrt(1/n1 + 1/n2)) with sigma, in reference-SD units, the change SD
    q sqrt(1 + r^2 - 2 rho r), the follow-up SD q r, or the ANCOVA residual SD q r sqrt(1 - rho^2);
    checked on forward draws of every ingredient (exact up to float rounding)."""
    spec = spec_variant(thresholds={"between_test": test, "analysed_fraction": 0.8})
    inputs = prepare_inputs(load_study(folder), spec)
    model = build_model(inputs, spec, resolve_prior(spec, "weakly_informative", inputs))
    names = ["threshold_noncentrality", "delta", "rho", "followup_sd_ratio", "trial_sd_ratio", "change_sd_ratio"]
    lam, delta, rho, r, q, change_sd = pm.draw([model[n] for n in names], draws=50, random_seed=1)
    rho, r, q = rho[:, 0], r[:, 0], q[:, 0]
    sigma = {
        "change": q * np.sqrt(1 + r**2 - 2 * rho * r),
        "follow_up": q * r,
        "ancova": q * r * np.sqrt(1 - rho**2),
    }[test]
    np.testing.assert_allclose(change_sd[:, 0], q * np.sqrt(1 + r**2 - 2 * rho * r), rtol=1e-12)
    se = np.sqrt(1 / (0.8 * 20) + 1 / (0.8 * 30))  # the share analysed scales both arms' n
    np.testing.assert_allclose(lam[:, 0], delta[:, 0, 0] / (sigma * se), rtol=1e-10)
    assert np.ptp(r) > 0  # the follow-up / baseline SD ratio has a prior, not a fixed 1
