"""``model.terms.arm_summary`` and its marginalised form (``model.marginal``): integrating the outcome
deviations out keeps the prior and the observed nodes; (slow) the posterior with a fixed correlation
against its closed form, and heavier tails with an uncertain correlation.

Tolerances of the slow checks are in Monte Carlo standard errors (MCSE from ArviZ on the same draws).
"""

from __future__ import annotations

import dataclasses

import arviz as az
import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayes_stenosis.testing import spec_variant, study_model, write_simulated_study, write_study
from tests.model.posterior_checks import SETTINGS, check_against_grid, sample_posterior


def test_marginalised_arm_summaries_keep_the_prior_and_the_observed_nodes(tmp_path):
    """Integrating the outcome deviations out must not change the prior of delta or of the change,
    nor the observed nodes (names, shapes) that the outputs read."""
    folder = write_simulated_study(tmp_path, "arm_summary_change", 3)
    draws = 4000
    prior = {}
    for param in ("noncentred", "marginalised"):
        model, _ = study_model(folder, spec_variant(hierarchy={"change_parameterisation": param}))
        assert {v.name for v in model.observed_RVs} >= {"obs_mean_change_reference_arm", "obs_mean_change_new_arm"}
        point = model.initial_point()
        assert np.isfinite(model.compile_logp()(point))
        assert np.all(np.isfinite(model.compile_dlogp()(point)))
        with model:
            prior[param] = pm.sample_prior_predictive(draws, random_seed=11, var_names=["delta", "change"]).prior
    assert "z_latent" not in prior["noncentred"] and "z_theta" not in prior["marginalised"]
    for name in ("delta", "change"):
        a = prior["noncentred"][name].values.reshape(draws, -1)
        b = prior["marginalised"][name].values.reshape(draws, -1)
        # independent draws: the SD of each cell agrees within 4 standard errors of a difference of SDs
        # (SE of a sample SD ~ sd / sqrt(2 n) for near-normal, inflated x2 for the Student-t tails)
        se = 2 * a.std(0) / np.sqrt(2 * draws) * np.sqrt(2)
        assert np.all(np.abs(a.std(0) - b.std(0)) < 4 * se), name
        assert np.all(np.abs(a.mean(0) - b.mean(0)) < 4 * np.sqrt(2 / draws) * a.std(0)), name


# ---------------------------------------------------------------------------------------------
# Slow: each samples a model. Tolerances are in Monte Carlo standard errors (MCSE from ArviZ, same draws)
# ---------------------------------------------------------------------------------------------


def _score_rows(n, sd_b, sd_f, base_mean, follow_means):
    rows = []
    for arm, follow in zip(("reference_arm", "new_arm"), follow_means, strict=True):
        rows.append(
            {
                "arm": arm,
                "outcome": "ODI",
                "time": 0,
                "kind": "score",
                "n": n,
                "mean": base_mean,
                "sd": sd_b,
            }
        )
        rows.append(
            {
                "arm": arm,
                "outcome": "ODI",
                "time": 4,
                "kind": "score",
                "n": n,
                "mean": follow,
                "sd": sd_f,
            }
        )
    return rows


@pytest.mark.slow
def test_arm_summaries_fixed_correlation_match_closed_form_and_uncertain_is_heavier_tailed(
    tmp_path,
):
    n, sd, rho = 200, 16.0, 0.5
    folder = write_study(tmp_path / "s", rows={"arm_summaries.csv": _score_rows(n, sd, sd, 40.0, (30.0, 28.0))})
    # vague priors on everything the closed form treats as flat: Delta (the "vague" set, 10 SMD) and the
    # reference-arm change (mu_change). The default N(0, 1 SMD) on the change would shrink the reference
    # arm's change (-10 points, SE 1.1) by se^2 / (16^2 + se^2) ~ 0.5 %, moving delta by ~0.05 points:
    # several MCSEs at 6,000 draws per chain.
    vague_change = {"mu_change_sigma": 10.0}
    fixed = spec_variant(correlation={"fixed_baseline_followup": rho}, hierarchy=vague_change)
    # more draws than elsewhere: the tail comparison below needs small quantile MCSEs
    long_run = dataclasses.replace(SETTINGS, draws=6000)
    idata, inputs, _ = sample_posterior(folder, fixed, "vague", long_run)
    # closed form: change SD = sqrt(2 (1 - rho)) * 16 = 16; SE of the difference = 16 sqrt(2/200)
    sd_change = np.sqrt(sd**2 + sd**2 - 2 * rho * sd * sd)
    se = sd_change * np.sqrt(2 / n)
    draws = idata.posterior["delta_natural"].sel(time=4.0, outcome="ODI").to_dataset(name="x")
    grid = np.linspace(-2 - 8 * se, -2 + 8 * se, 4001)
    # the reported SDs are estimates (chi-square), which widens the posterior by a factor
    # ~ (1 + 1/(2(n-1)))^(1/2) - 1 ~ 0.1 %: negligible against the MCSE
    check_against_grid(draws, grid, stats.norm.pdf(grid, -2.0, se))

    # an uncertain correlation (uniform) with the same mean: same variance, heavier tails
    wide = spec_variant(correlation={"ODI": {"alpha": 1.0, "beta": 1.0}}, hierarchy=vague_change)
    idata_w, _, _ = sample_posterior(folder, wide, "vague", long_run)
    wide_draws = idata_w.posterior["delta_natural"].sel(time=4.0, outcome="ODI").to_dataset(name="x")

    def width_and_mcse(ds):
        # 99 % interval width; its MCSE from the MCSEs of the two endpoints (independent tails)
        x = ds["x"].values.ravel()
        mcse = [float(az.mcse(ds, method="quantile", prob=p)["x"]) for p in (0.005, 0.995)]
        return np.quantile(x, 0.995) - np.quantile(x, 0.005), float(np.hypot(*mcse))

    w_fixed, m_fixed = width_and_mcse(draws)
    w_wide, m_wide = width_and_mcse(wide_draws)
    assert w_wide - w_fixed > 3 * np.hypot(m_fixed, m_wide), (w_wide, w_fixed, m_fixed, m_wide)
    # excess kurtosis: 0 for the fixed-rho normal; a uniform rho makes the variance uniform on (0, 2c),
    # excess kurtosis 3 E[v^2] / E[v]^2 - 3 = 1. Sample kurtosis SE ~ sqrt(24 / ESS); require 3 SE.
    ess = min(float(az.ess(draws)["x"]), float(az.ess(wide_draws)["x"]))
    k_fixed, k_wide = stats.kurtosis(draws["x"].values.ravel()), stats.kurtosis(wide_draws["x"].values.ravel())
    assert k_wide - k_fixed > 3 * np.sqrt(2 * 24 / ess), (k_wide, k_fixed, ess)
