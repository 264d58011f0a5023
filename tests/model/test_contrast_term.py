"""``model.terms.contrast``: the posterior of one reported contrast against the conjugate normal answer
(slow: samples a model).

Tolerances are in Monte Carlo standard errors (MCSE from ArviZ on the same draws).
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
from scipy import stats

from bayes_stenosis.inference import SamplerSettings, sample
from bayes_stenosis.model import build_model, prepare_inputs, resolve_prior
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import spec_variant, write_study

pytestmark = pytest.mark.slow
SETTINGS = SamplerSettings(name="nutpie", chains=4, draws=2000, tune=1000, target_accept=0.95, seed=7, prior_draws=10)


def _fit(folder, spec, prior_set, settings=SETTINGS):
    inputs = prepare_inputs(load_study(folder), spec)
    prior = resolve_prior(spec, prior_set, inputs)
    idata, _ = sample(build_model(inputs, spec, prior), settings, progress=False)
    return idata, inputs, prior


def _check_against_grid(draws_ds, grid, density, n_mcse=3.0):
    """Posterior mean and 5 %/95 % quantiles vs a grid density, within n_mcse MCSE."""
    density = density / np.trapezoid(density, grid)
    cdf = np.concatenate([[0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    exact = {
        "mean": np.trapezoid(grid * density, grid),
        "q05": np.interp(0.05, cdf, grid),
        "q95": np.interp(0.95, cdf, grid),
    }
    values = draws_ds["x"].values.ravel()
    got = {
        "mean": values.mean(),
        "q05": np.quantile(values, 0.05),
        "q95": np.quantile(values, 0.95),
    }
    mcse = {
        "mean": float(az.mcse(draws_ds, method="mean")["x"]),
        "q05": float(az.mcse(draws_ds, method="quantile", prob=0.05)["x"]),
        "q95": float(az.mcse(draws_ds, method="quantile", prob=0.95)["x"]),
    }
    for key in exact:
        assert abs(got[key] - exact[key]) < n_mcse * mcse[key], (
            key,
            got[key],
            exact[key],
            mcse[key],
        )


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
    idata, _, prior = _fit(folder, spec, "vague")
    prior_sd = prior.sigma * ref_sd  # Normal(0, 10 SMD) on the natural scale
    post_var = 1 / (1 / se**2 + 1 / prior_sd**2)
    post_mean = post_var * estimate / se**2
    draws = idata.posterior["delta_natural"].sel(time=4.0, outcome="ODI").to_dataset(name="x")
    grid = np.linspace(post_mean - 8 * np.sqrt(post_var), post_mean + 8 * np.sqrt(post_var), 4001)
    _check_against_grid(draws, grid, stats.norm.pdf(grid, post_mean, np.sqrt(post_var)))
    # MCSE of the SD by the delta method on the second central moment (az.mcse(method="sd")
    # fails under numba in arviz 0.23.4)
    centred = (draws["x"] - draws["x"].mean()) ** 2
    sd_mcse = float(az.mcse(centred.to_dataset(name="x"), method="mean")["x"]) / (2 * float(draws["x"].std()))
    assert abs(draws["x"].values.std() - np.sqrt(post_var)) < 3 * sd_mcse
