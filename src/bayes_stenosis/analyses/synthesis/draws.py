"""Independent draws from the grid posterior of a synthesis, for ``posterior.nc``: what a synthesis hands on
(a MAP prior for a new trial, say) in the same form as every run folder.

Each draw picks a grid cell (tau_j, mu_k) with its posterior probability, spreads mu uniformly over the cell,
then draws theta_new ~ N(mu, tau^2) and each study's theta_i from its conditional given (mu, tau): a kernel
c with probability proportional to w_c N(mu; x_c, v_c + tau^2), then N((x_c tau^2 + mu v_c)/(v_c + tau^2),
v_c tau^2/(v_c + tau^2)). The draws are exact up to the grid (no Markov chain): ESS is their number.
"""

from __future__ import annotations

import arviz as az
import numpy as np

from bayes_stenosis.analyses.synthesis.engine import GridPosterior, Likelihood

__all__ = ["posterior_draws", "resampled_draws"]


def _theta_draws(rng: np.random.Generator, lik: Likelihood, mu: np.ndarray, tau: np.ndarray) -> np.ndarray:
    w = lik.weights / lik.weights.sum()
    var = lik.variances[None, :] + tau[:, None] ** 2
    logk = np.log(w)[None, :] - 0.5 * (mu[:, None] - lik.centers[None, :]) ** 2 / var - 0.5 * np.log(var)
    prob = np.exp(logk - logk.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    pick = (prob.cumsum(axis=1) < rng.uniform(size=(len(mu), 1))).sum(axis=1)
    pick = np.minimum(pick, len(w) - 1)
    x, v, t2 = lik.centers[pick], lik.variances[pick], tau**2
    mean = (x * t2 + mu * v) / (v + t2)
    return mean + np.sqrt(v * t2 / (v + t2)) * rng.standard_normal(len(mu))


def posterior_draws(
    grid: GridPosterior,
    likelihoods: list[Likelihood],
    studies: list[str],
    *,
    seed: int,
    chains: int = 4,
    draws: int = 1000,
    unit: str = "",
) -> az.InferenceData:
    """``mu``, ``tau``, ``theta_new`` and ``theta`` (dim ``study``) as an InferenceData, from ``seed``."""
    rng = np.random.default_rng(seed)
    n = chains * draws
    cell = rng.choice(grid.prob.size, size=n, p=grid.prob.ravel())
    j, k = np.unravel_index(cell, grid.prob.shape)
    tau = grid.tau[j]
    mu = grid.mu[k] + grid.mu_step * (rng.uniform(size=n) - 0.5)
    theta_new = mu + tau * rng.standard_normal(n)
    theta = np.stack([_theta_draws(rng, lik, mu, tau) for lik in likelihoods], axis=-1)

    def shaped(x: np.ndarray) -> np.ndarray:
        return x.reshape(chains, draws, *x.shape[1:])

    idata = az.from_dict(
        posterior={"mu": shaped(mu), "tau": shaped(tau), "theta_new": shaped(theta_new), "theta": shaped(theta)},
        coords={"study": studies},
        dims={"theta": ["study"]},
    )
    idata.posterior.attrs |= {"unit": unit, "seed": seed, "draws": "independent draws from the grid posterior"}
    return idata


def resampled_draws(
    draws: dict[str, np.ndarray],
    weights: np.ndarray,
    cells: list[str],
    *,
    seed: int,
    chains: int = 4,
    n: int = 1000,
    unit: str = "",
) -> az.InferenceData:
    """``mu`` and ``theta_new`` (dim ``cell``), ``tau`` and ``r`` of a multivariate synthesis as an
    InferenceData: ``chains x n`` draws resampled (multinomial, from ``seed``) from its weighted draws
    (all weights equal for a normal mu prior)."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(weights), size=chains * n, p=weights)

    def shaped(x: np.ndarray) -> np.ndarray:
        return x[pick].reshape(chains, n, *x.shape[1:])

    idata = az.from_dict(
        posterior={key: shaped(draws[key]) for key in ("mu", "theta_new", "tau", "r")},
        coords={"cell": cells},
        dims={"mu": ["cell"], "theta_new": ["cell"]},
    )
    idata.posterior.attrs |= {"unit": unit, "seed": seed, "draws": "resampled from the multivariate synthesis's draws"}
    return idata
