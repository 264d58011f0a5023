"""Sampling a study's model and checking the posterior against a density on a grid, for the slow checks of
the likelihood terms (imported by them; not a test module).

Tolerances are in Monte Carlo standard errors (MCSE from ArviZ on the same draws).
"""

from __future__ import annotations

import arviz as az
import numpy as np

from bayes_stenosis.inference import SamplerSettings, sample
from bayes_stenosis.model import build_model, prepare_inputs, resolve_prior
from bayes_stenosis.study import load_study

SETTINGS = SamplerSettings(name="nutpie", chains=4, draws=2000, tune=1000, target_accept=0.95, seed=7, prior_draws=10)


def sample_posterior(folder, spec, prior_set, settings=SETTINGS):
    """Sample the model of the study ``folder``: its InferenceData, inputs and resolved prior."""
    inputs = prepare_inputs(load_study(folder), spec)
    prior = resolve_prior(spec, prior_set, inputs)
    idata, _ = sample(build_model(inputs, spec, prior), settings, progress=False)
    return idata, inputs, prior


def check_against_grid(draws_ds, grid, density, n_mcse=3.0):
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
