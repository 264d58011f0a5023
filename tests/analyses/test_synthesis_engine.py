"""The synthesis grid engine (``analyses/synthesis/engine.py``) against closed forms, the round trip of one
study, the reweighted-draws likelihood within its Monte Carlo error, and (slow) NUTS on the same model.

The grid is deterministic: its error is discretisation, measured at about 1e-5 of a posterior SD on these
examples; the closed-form tests allow :data:`GRID_TOL` (0.1 % of the SD, 100 times that). The Monte Carlo
comparisons allow 4 combined Monte Carlo SEs.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from bayes_stenosis.analyses.synthesis import (
    Likelihood,
    effect_prior,
    heterogeneity_prior,
    posterior_grid,
    summarize_grid,
)
from bayes_stenosis.analyses.synthesis.engine import kish_ess
from bayes_stenosis.analyses.synthesis.inputs import kernel_mixture
from tests.analyses.synthesis_closed_forms import GRID_TOL, mu_given_tau, study_effects_fixed_tau, tau_integrated

#: Allowed grid error, relative to the posterior SD (see the module docstring).
Y = np.array([-0.25, 0.10, 0.30])
SE = np.array([0.32, 0.25, 0.40])
MARGIN = 0.75


def synthesis(y, se, mu="normal:1", tau="bartos2021_back_and_neck"):
    liks = [Likelihood.normal(a, b) for a, b in zip(y, se, strict=True)]
    grid = posterior_grid(liks, effect_prior(mu), heterogeneity_prior(tau))
    return summarize_grid(grid, liks, MARGIN)


def test_fixed_tau_equals_the_conjugate_normal_answer():
    tau = 0.2
    out = synthesis(Y, SE, tau=f"fixed:{tau}")
    m, v = mu_given_tau(Y, SE, tau, 0.0, 1.0)
    sd = np.sqrt(v)
    pooled = out["pooled"]
    assert abs(pooled["mean"] - m) < GRID_TOL * sd
    assert abs(pooled["sd"] - sd) < GRID_TOL * sd
    assert abs(pooled["interval_low"] - (m - 1.959964 * sd)) < GRID_TOL * sd
    p = stats.norm.cdf(MARGIN, m, sd) - stats.norm.cdf(-MARGIN, m, sd)
    assert abs(pooled["prob_equivalence"] - p) < GRID_TOL
    new_sd = np.sqrt(v + tau**2)
    assert abs(out["new_study"]["sd"] - new_sd) < GRID_TOL * new_sd
    p_new = stats.norm.cdf(MARGIN, m, new_sd) - stats.norm.cdf(-MARGIN, m, new_sd)
    assert abs(out["new_study"]["prob_equivalence"] - p_new) < GRID_TOL
    means, sds = study_effects_fixed_tau(Y, SE, tau, 0.0, 1.0)
    for got, mean, s in zip(out["studies"], means, sds, strict=True):
        assert abs(got["mean"] - mean) < GRID_TOL * s
        assert abs(got["sd"] - s) < GRID_TOL * s


@pytest.mark.parametrize("tau", ["bartos2021_back_and_neck", "half_normal:0.5"])
def test_unknown_tau_equals_adaptive_quadrature_over_tau(tau):
    out = synthesis(Y, SE, tau=tau)
    ref = tau_integrated(Y, SE, heterogeneity_prior(tau).dist, 0.0, 1.0, MARGIN)
    pooled = out["pooled"]
    assert abs(pooled["mean"] - ref["mean"]) < GRID_TOL * ref["sd"]
    assert abs(pooled["sd"] - ref["sd"]) < GRID_TOL * ref["sd"]
    assert abs(pooled["prob_equivalence"] - ref["prob_pooled"]) < GRID_TOL
    assert abs(out["new_study"]["prob_equivalence"] - ref["prob_new"]) < GRID_TOL
    assert abs(out["tau"]["mean"] - ref["tau_mean"]) < GRID_TOL * ref["tau_mean"] * 10  # heavy right tail


def test_one_study_alone_returns_its_likelihood_times_the_synthesis_prior():
    """Round trip: with one study, theta_1's posterior is L(theta) x the synthesis prior of theta,
    pi(theta) = int p(tau) N(theta; m0, s0^2 + tau^2) dtau (normal mu prior), by direct quadrature."""
    y, se = -0.25, 0.32
    tau_dist = heterogeneity_prior("bartos2021_back_and_neck").dist
    out = synthesis(np.array([y]), np.array([se]))["studies"][0]

    def prior_theta(theta):
        return integrate.quad(lambda t: tau_dist.pdf(t) * stats.norm.pdf(theta, 0, np.sqrt(1 + t**2)), 0, np.inf)[0]

    def post(theta):
        return stats.norm.pdf(y, theta, se) * prior_theta(theta)

    lo, hi = y - 10 * se, y + 10 * se
    z = integrate.quad(post, lo, hi, points=[y])[0]
    mean = integrate.quad(lambda t: t * post(t), lo, hi, points=[y])[0] / z
    sd = np.sqrt(integrate.quad(lambda t: (t - mean) ** 2 * post(t), lo, hi, points=[y])[0] / z)
    inside = integrate.quad(post, -MARGIN, MARGIN, points=[y])[0] / z
    assert abs(out["mean"] - mean) < GRID_TOL * sd
    assert abs(out["sd"] - sd) < GRID_TOL * sd
    assert abs(out["prob_equivalence"] - inside) < GRID_TOL


def test_reweighted_draws_recover_a_normal_likelihood_within_monte_carlo_error():
    """Posterior draws of N(y, se^2) x Student-t(5, 0, 0.37) (the package's default prior), reweighted by
    1/prior, give back N(y, se^2); the synthesis from them matches the synthesis from the normal."""
    y, se = -0.25, 0.32
    prior = stats.t(5, 0, 0.37)
    grid = np.linspace(-3, 3, 20001)
    dens = stats.norm.pdf(y, grid, se) * prior.pdf(grid)
    cdf = np.cumsum(dens) / dens.sum()
    draws = np.interp(np.random.default_rng(20261207).uniform(size=6000), cdf, grid)  # exact posterior draws
    w = 1 / prior.pdf(draws)
    ess = kish_ess(w)
    lik = kernel_mixture(draws, w, ess)
    mcse = se / np.sqrt(ess)
    assert abs(lik.mean - y) < 4 * mcse
    assert abs(lik.sd - se) < 4 * se / np.sqrt(2 * ess)
    from_draws = summarize_grid(
        g := posterior_grid([lik], effect_prior("normal:1"), heterogeneity_prior("half_normal:0.5")), [lik], MARGIN
    )
    assert g.prob.sum() == pytest.approx(1.0)
    exact = synthesis(np.array([y]), np.array([se]), tau="half_normal:0.5")
    assert abs(from_draws["pooled"]["mean"] - exact["pooled"]["mean"]) < 4 * mcse


def test_posterior_inputs_in_place_of_likelihoods_change_the_answer():
    """Double counting: a study's posterior under its own prior N(0, 0.37^2) has precision prior + data;
    pooling it as if it were a likelihood counts that prior again and moves the pooled effect."""
    s0 = 0.37
    post_var = 1 / (1 / s0**2 + 1 / SE**2)
    post_mean = post_var * Y / SE**2
    right = synthesis(Y, SE)["pooled"]
    wrong = synthesis(post_mean, np.sqrt(post_var))["pooled"]
    # overconfident: narrower (0.230 vs 0.272 here) and more probably equivalent (0.992 vs 0.986)
    assert wrong["sd"] < 0.9 * right["sd"]
    assert wrong["prob_equivalence"] - right["prob_equivalence"] > 5 * GRID_TOL


@pytest.mark.slow
def test_nuts_on_the_same_model_agrees_with_the_grid_within_mcse():
    """The other engine: PyMC's NUTS (through the inference layer) on theta_i = mu + tau z_i with the
    default priors (Student-t mu, inverse-gamma tau); mean of mu, E[tau] and P(|mu| < m) within 4 MCSE."""
    import arviz as az
    import pymc as pm

    from bayes_stenosis.inference import CompileCache, SamplerSettings, draw_posterior, phases

    with pm.Model() as model:
        mu = pm.StudentT("mu", nu=5, mu=0, sigma=0.37)
        tau = pm.InverseGamma("tau", alpha=1.75, beta=0.57)
        z = pm.Normal("z", 0, 1, shape=len(Y))
        pm.Normal("y", mu + tau * z, SE, observed=Y)
    settings = SamplerSettings(name="nutpie", chains=4, draws=2500, tune=1500, target_accept=0.95, seed=20261207)
    idata = draw_posterior(model, settings, progress=False, phase=phases(None), compiled=CompileCache(), timings={})
    post = idata.posterior
    grid = synthesis(Y, SE, mu="weakly_informative")
    inside = (np.abs(post["mu"]) < MARGIN).astype(float)
    checks = [
        (float(post["mu"].mean()), grid["pooled"]["mean"], float(az.mcse(post["mu"]).to_array().item())),
        (float(post["tau"].mean()), grid["tau"]["mean"], float(az.mcse(post["tau"]).to_array().item())),
        (float(inside.mean()), grid["pooled"]["prob_equivalence"], float(az.mcse(inside).to_array().item())),
    ]
    for mcmc, exact, mcse in checks:
        assert abs(mcmc - exact) < 4 * mcse, (mcmc, exact, mcse)
