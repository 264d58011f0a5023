r"""The multivariate synthesis of several cells (outcomes and / or times) at once, from each study's joint
normal likelihood over the cells it has (``approximations.json``'s ``likelihood`` mean and covariance).

Model, over K cells (standardized units unless every cell and study shares one unit and SD):

.. math::

    \mu_k \sim p(\mu) \text{ independently}, \quad \tau \sim p(\tau), \quad r \sim p(r), \quad
    \theta_i \mid \mu, \tau, r \sim \mathrm{MVN}(\mu, T), \quad T = \tau^2\{(1 - r) I + r J\},

    y_i \mid \theta_i \sim \mathrm{MVN}(P_i \theta_i, S_i),

with :math:`P_i` selecting the cells study i reports (a study missing a cell contributes the marginal of its
observed sub-vector) and :math:`S_i` its stored likelihood covariance over them. :math:`r` is the between-study
correlation of the cells' random effects, valid on :math:`(-1/(K-1), 1)`.

For fixed :math:`(\tau, r)` and a prior precision :math:`\Lambda_0` on :math:`\mu` (normal prior
:math:`N(m_0, \Lambda_0^{-1})`; a flat prior is :math:`\Lambda_0 = 0`), with :math:`C_i = S_i + P_i T P_i^T`,

.. math::

    A = \Lambda_0 + \sum_i P_i^T C_i^{-1} P_i, \quad b = \Lambda_0 m_0 + \sum_i P_i^T C_i^{-1} y_i, \quad
    \mu \mid y, \tau, r \sim \mathrm{MVN}(A^{-1} b, A^{-1}),

    \log p(y \mid \tau, r) = \text{const} - \tfrac12 \sum_i \log|C_i| - \tfrac12 \log|A|
    - \tfrac12 (c - b^T A^{-1} b), \quad c = m_0^T \Lambda_0 m_0 + \sum_i y_i^T C_i^{-1} y_i.

:math:`(\tau, r)` are integrated on a grid of equal-probability nodes of their priors (tau as in the univariate
engine; r at the midpoints of equal slices of its uniform prior, or fixed), so the node posterior is
proportional to :math:`p(y \mid \tau, r)`.

* Normal :math:`\mu` prior: exact. Each cell's pooled effect is the mixture over nodes of
  :math:`N((A^{-1}b)_k, (A^{-1})_{kk})`, a new study's effect of :math:`N((A^{-1}b)_k, (A^{-1})_{kk} + \tau^2)`.
* Student-t :math:`\mu` prior: self-normalised importance sampling. The proposal is the exact posterior under a
  FLAT :math:`\mu` prior (proper whenever every cell has a study), and each draw's weight is the t prior
  density :math:`\prod_k t_\nu(\mu_k; 0, s)`: bounded, so the weights have finite variance. Monte Carlo error
  is reported through Kish's effective size.

The joint probabilities :math:`P(\text{all } |\mu_k| < m_k)` and :math:`P(\text{all } |\theta_{new,k}| < m_k)`
come from draws (seeded) in both cases, :math:`\theta_{new} \mid \mu, \tau, r \sim \mathrm{MVN}(\mu, T)`, with
their binomial Monte Carlo SE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from bayes_stenosis.analyses.synthesis.engine import cdf_quantiles, normal_mixture, tau_nodes
from bayes_stenosis.analyses.synthesis.priors import EffectPrior, HeterogeneityPrior
from bayes_stenosis.errors import InputError

__all__ = ["CorrelationPrior", "MvLikelihood", "MvPosterior", "correlation_prior", "mv_posterior", "mv_summary"]


@dataclass(frozen=True)
class MvLikelihood:
    """One study's joint normal likelihood over the cells it reports: ``cells`` (indices into the synthesis's
    K cells), ``mean`` and ``cov`` over them."""

    cells: np.ndarray
    mean: np.ndarray
    cov: np.ndarray


@dataclass(frozen=True)
class CorrelationPrior:
    """The prior of r, the between-study correlation of the cells' random effects: ``uniform`` over its valid
    range (-1/(K-1), 1) or ``fixed`` at ``value``."""

    name: str
    family: str
    value: float | None = None

    def nodes(self, k: int, n: int) -> np.ndarray:
        if k == 1:
            return np.array([0.0])  # one cell: r does not enter
        if self.family == "fixed":
            return np.array([self.value])
        lo = -1.0 / (k - 1)
        return lo + (1 - lo) * (np.arange(n) + 0.5) / n

    def text(self, k: int) -> str:
        if k == 1:
            return "r does not enter (one cell)"
        if self.family == "fixed":
            return f"r fixed at {self.value:g}"
        return f"r ~ Uniform({-1 / (k - 1):.3g}, 1)"

    def record(self, k: int) -> dict:
        return {
            "name": self.name,
            "family": self.family,
            "value": self.value,
            "text": self.text(k),
            "source": "bayes-stenosis choice: the correlation of the cells' random effects is rarely "
            "estimable from a few studies, so by default it is integrated over its whole valid range "
            "(uniform), not fixed; fixed:R is the user's choice",
        }


def correlation_prior(spec: str | CorrelationPrior = "uniform") -> CorrelationPrior:
    """``uniform`` or ``fixed:R`` (-1 < R < 1; checked against the cells' count by :func:`mv_posterior`)."""
    if isinstance(spec, CorrelationPrior):
        return spec
    if spec == "uniform":
        return CorrelationPrior(spec, "uniform")
    if spec.startswith("fixed:"):
        try:
            value = float(spec.split(":", 1)[1])
        except ValueError:
            value = float("nan")
        if not -1 < value < 1:
            raise InputError(None, f"--between-correlation fixed: expected a number in (-1, 1) (got {spec!r})")
        return CorrelationPrior(spec, "fixed", value)
    raise InputError(None, f"--between-correlation: unknown prior {spec!r} (uniform or fixed:R)")


@dataclass(frozen=True)
class MvPosterior:
    """The node posterior: ``tau``, ``r`` and ``prob`` per node, the conditional ``mean`` (nodes x K) and
    ``cov`` (nodes x K x K) of mu, and whether ``exact`` (normal mu prior) or an importance proposal."""

    tau: np.ndarray
    r: np.ndarray
    prob: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    exact: bool


def between_cov(tau: np.ndarray, r: np.ndarray, k: int) -> np.ndarray:
    """T = tau^2 ((1 - r) I + r J) per node, shape (nodes, K, K)."""
    eye, ones = np.eye(k), np.ones((k, k))
    return tau[:, None, None] ** 2 * ((1 - r)[:, None, None] * eye + r[:, None, None] * ones)


def mv_posterior(
    likelihoods: list[MvLikelihood],
    k: int,
    mu_prior: EffectPrior,
    tau_prior: HeterogeneityPrior,
    r_prior: CorrelationPrior,
    *,
    n_tau: int = 200,
    n_r: int = 40,
) -> MvPosterior:
    """The (tau, r) node posterior with mu | nodes in closed form (module docstring)."""
    if r_prior.family == "fixed" and k > 1 and not -1 / (k - 1) < r_prior.value < 1:
        raise InputError(None, f"--between-correlation: r must lie in ({-1 / (k - 1):.3g}, 1) for {k} cells")
    t, rr = np.meshgrid(tau_nodes(tau_prior, n_tau), r_prior.nodes(k, n_r), indexing="ij")
    tau, r = t.ravel(), rr.ravel()
    big_t = between_cov(tau, r, k)
    exact = mu_prior.family == "normal"
    prec0 = 1 / mu_prior.params["sigma"] ** 2 if exact else 0.0
    m0 = mu_prior.params["mu"]
    a = np.broadcast_to(prec0 * np.eye(k), big_t.shape).copy()
    b = np.full((len(tau), k), prec0 * m0)
    c = np.full(len(tau), k * prec0 * m0**2)
    logdet_c = np.zeros(len(tau))
    for lik in likelihoods:
        o = lik.cells
        cov = lik.cov[None] + big_t[:, o[:, None], o[None, :]]
        inv = np.linalg.inv(cov)
        logdet_c += np.linalg.slogdet(cov)[1]
        a[:, o[:, None], o[None, :]] += inv
        iy = inv @ lik.mean
        b[:, o] += iy
        c += iy @ lik.mean
    cov_mu = np.linalg.inv(a)
    mean_mu = np.einsum("nij,nj->ni", cov_mu, b)
    log_z = -0.5 * logdet_c - 0.5 * np.linalg.slogdet(a)[1] - 0.5 * (c - np.einsum("ni,ni->n", b, mean_mu))
    prob = np.exp(log_z - log_z.max())
    return MvPosterior(tau, r, prob / prob.sum(), mean_mu, cov_mu, exact)


def posterior_sample(
    post: MvPosterior, mu_prior: EffectPrior, seed: int, n: int = 40_000
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``n`` draws of tau, r, mu (n x K) and theta_new (n x K) from the node posterior, with their weights
    (all 1 for a normal mu prior; the t prior density for the flat-prior proposal)."""
    rng = np.random.default_rng(seed)
    k = post.mean.shape[1]
    node = rng.choice(len(post.prob), size=n, p=post.prob)
    chol = np.linalg.cholesky(post.cov)
    mu = post.mean[node] + np.einsum("nij,nj->ni", chol[node], rng.standard_normal((n, k)))
    # T = tau^2 ((1 - r) I + r J) = A A^T with A = tau (sqrt(1 - r) I + (sqrt(1 - r + k r) - sqrt(1 - r)) J / k)
    s1, s2 = np.sqrt(1 - post.r[node]), np.sqrt(1 - post.r[node] + k * post.r[node])
    z = rng.standard_normal((n, k))
    theta = mu + post.tau[node][:, None] * (s1[:, None] * z + ((s2 - s1)[:, None] / k) * z.sum(axis=1)[:, None])
    if post.exact:
        w = np.ones(n)
    else:
        logw = stats.t.logpdf(mu, mu_prior.params["nu"], mu_prior.params["mu"], mu_prior.params["sigma"]).sum(axis=1)
        w = np.exp(logw - logw.max())
    draws = {"tau": post.tau[node], "r": post.r[node], "mu": mu, "theta_new": theta, "node": node}
    return draws, w / w.sum()


def weighted_summary(x: np.ndarray, w: np.ndarray, margin: float | None, level: float) -> dict[str, float]:
    """Mean, SD, median, equal-tailed interval and P(|x| < margin) of weighted draws."""
    tail = (1 - level) / 2
    mean = float(np.sum(w * x))
    q = cdf_quantiles(x, w, [tail, 0.5, 1 - tail])
    out = {
        "mean": mean,
        "sd": float(np.sqrt(max(np.sum(w * x**2) - mean**2, 0.0))),
        "median": q[1],
        "interval_low": q[0],
        "interval_high": q[2],
    }
    if margin is not None:
        out["prob_equivalence"] = float(np.sum(w * (np.abs(x) < margin)))
    return out


def _with_mcse(p: float, ess: float) -> dict[str, float]:
    return {"prob": p, "mcse": float(np.sqrt(max(p * (1 - p), 0.0) / ess))}


def mv_summary(
    post: MvPosterior,
    mu_prior: EffectPrior,
    margins: np.ndarray,
    *,
    seed: int,
    level: float = 0.95,
    n_draws: int = 40_000,
) -> tuple[dict, dict[str, np.ndarray], np.ndarray]:
    """Per cell the pooled effect and a new study's effect (each with P(|x| < m_k)), the joint
    P(all cells inside) of both, tau and r; returns ``(numbers, draws, weights)``."""
    draws, w = posterior_sample(post, mu_prior, seed, n_draws)
    ess = 1.0 / float(np.sum(w**2))
    k = post.mean.shape[1]
    cells = []
    for j in range(k):
        sd = np.sqrt(post.cov[:, j, j])
        if post.exact:
            pooled = normal_mixture(post.prob, post.mean[:, j], sd, margins[j], level)
            new = normal_mixture(post.prob, post.mean[:, j], np.sqrt(sd**2 + post.tau**2), margins[j], level)
        else:
            pooled = weighted_summary(draws["mu"][:, j], w, margins[j], level)
            new = weighted_summary(draws["theta_new"][:, j], w, margins[j], level)
            pooled["mcse_prob_equivalence"] = _with_mcse(pooled["prob_equivalence"], ess)["mcse"]
            new["mcse_prob_equivalence"] = _with_mcse(new["prob_equivalence"], ess)["mcse"]
        cells.append({"pooled": pooled, "new_study": new})
    inside = {key: np.all(np.abs(draws[key]) < margins[None, :], axis=1) for key in ("mu", "theta_new")}
    joint = {
        "pooled": _with_mcse(float(np.sum(w * inside["mu"])), ess),
        "new_study": _with_mcse(float(np.sum(w * inside["theta_new"])), ess),
        "draws": n_draws,
        "effective_draws": ess,
    }
    numbers = {
        "cells": cells,
        "joint_prob_equivalence": joint,
        "tau": _marginal(post, draws, w, "tau", level),
        "r": _marginal(post, draws, w, "r", level) if k > 1 else None,
        "engine": {
            "route": "exact (normal mu prior: conjugate MVN given tau, r)"
            if post.exact
            else "importance sampling: flat-prior conjugate proposal weighted by the Student-t prior density",
            "nodes": len(post.prob),
            "n_tau": len(np.unique(post.tau)),
            "n_r": len(np.unique(post.r)),
            "draws": n_draws,
            "effective_draws": ess,
            "seed": seed,
        },
    }
    return numbers, draws, w


def _marginal(post: MvPosterior, draws: dict, w: np.ndarray, key: str, level: float) -> dict[str, float]:
    """tau's or r's posterior: summed over the nodes (exact), or over the weighted draws (importance)."""
    tail = (1 - level) / 2
    values, prob = (getattr(post, key), post.prob) if post.exact else (draws[key], w)
    uniq, inv = np.unique(values, return_inverse=True)
    p = np.bincount(inv, weights=prob)
    q = cdf_quantiles(uniq, p, [tail, 0.5, 1 - tail])
    return {"mean": float(np.sum(p * uniq)), "median": q[1], "interval_low": q[0], "interval_high": q[2]}
