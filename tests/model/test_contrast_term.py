"""``model.terms.contrast``: the posterior of one reported contrast against the conjugate normal answer
(slow: samples a model).

Tolerances are in Monte Carlo standard errors (MCSE from ArviZ on the same draws).
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
from scipy import stats

from bayes_stenosis.testing import spec_variant, write_study
from tests.model.posterior_checks import check_against_grid, sample_posterior

pytestmark = pytest.mark.slow


def test_contrast_posterior_matches_conjugate_normal(tmp_path):
    estimate, se, ref_sd = -2.0, 3.0, 16.0
    folder = write_study(
        tmp_path / "s",
        rows={
            "contrasts.csv": [
                {
                    "outcome": "ODI",
                    "time": 4,
                    "measure": "change",
                    "direction": "new_minus_reference",
                    "estimate": estimate,
                    "se": se,
                }
            ]
        },
    )
    spec = spec_variant()
    idata, _, prior = sample_posterior(folder, spec, "vague")
    prior_sd = prior.sigma * ref_sd  # Normal(0, 10 SMD) on the natural scale
    post_var = 1 / (1 / se**2 + 1 / prior_sd**2)
    post_mean = post_var * estimate / se**2
    draws = idata.posterior["delta_natural"].sel(time=4.0, outcome="ODI").to_dataset(name="x")
    grid = np.linspace(post_mean - 8 * np.sqrt(post_var), post_mean + 8 * np.sqrt(post_var), 4001)
    check_against_grid(draws, grid, stats.norm.pdf(grid, post_mean, np.sqrt(post_var)))
    # MCSE of the SD by the delta method on the second central moment (az.mcse(method="sd")
    # fails under numba in arviz 0.23.4)
    centred = (draws["x"] - draws["x"].mean()) ** 2
    sd_mcse = float(az.mcse(centred.to_dataset(name="x"), method="mean")["x"]) / (2 * float(draws["x"].std()))
    assert abs(draws["x"].values.std() - np.sqrt(post_var)) < 3 * sd_mcse
