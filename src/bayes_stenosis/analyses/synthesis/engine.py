r"""The random-effects synthesis, by numerical integration on a grid (deterministic: no sampling, no seed).

Model (normal-normal hierarchical model with a study likelihood :math:`L_i`):

.. math::

    \mu \sim p(\mu), \qquad \tau \sim p(\tau), \qquad \theta_i \mid \mu, \tau \sim N(\mu, \tau^2), \qquad
    p(\text{data}_i \mid \theta_i) = L_i(\theta_i).

Each :math:`L_i` is a mixture of normal kernels, :math:`L_i(\theta) \propto \sum_c w_c\, N(x_c; \theta, v_c)`:
one kernel for a normal likelihood approximation (:math:`x = \hat\theta_i`, :math:`v = s_i^2`), many for a
likelihood represented by a run's posterior draws reweighted by the prior (a weighted kernel density of the
draws). Then :math:`\theta_i` integrates out in closed form,

.. math::

    p(\text{data}_i \mid \mu, \tau) \propto \sum_c w_c\, N(\mu; x_c, v_c + \tau^2),

and the joint posterior of :math:`(\tau, \mu)` is computed on a grid: :math:`\tau` at the midpoints of
``n_tau`` equal-probability slices of its prior (so any prior with a quantile function integrates
without a truncation point), :math:`\mu` on a uniform grid covering the prior and every likelihood.
Everything reported is a sum over that grid:

* :math:`\mu`: mean, SD, quantiles, :math:`P(|\mu| < m)`;
* a new study's effect :math:`\theta_{new} \mid \mu, \tau \sim N(\mu, \tau^2)`: its mean, SD,
  :math:`P(|\theta_{new}| < m) = \sum p(\tau, \mu)[\Phi((m-\mu)/\tau) - \Phi((-m-\mu)/\tau)]` and the
  prediction interval (quantiles of that mixture, by bisection);
* the shrunken study effects :math:`\theta_i \mid \text{data}`: given :math:`(\mu, \tau)` each kernel's
  conditional is normal with mean :math:`(x_c \tau^2 + \mu v_c)/(v_c + \tau^2)` and variance
  :math:`v_c \tau^2/(v_c + \tau^2)`; the mixture over kernels is moment-matched within each grid cell
  (exact for a one-kernel likelihood), then summed over the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from bayes_stenosis.analyses.synthesis.priors import EffectPrior, HeterogeneityPrior

__all__ = ["GridPosterior", "Likelihood", "new_study_probability", "posterior_grid", "summarize_grid"]


@dataclass(frozen=True)
class Likelihood:
    """A study's likelihood of its effect as a mixture of normal kernels (module docstring)."""

    centers: np.ndarray
    variances: np.ndarray
    weights: np.ndarray

    @classmethod
    def normal(cls, estimate: float, se: float) -> Likelihood:
        """The likelihood of one estimate with a known standard error."""
        return cls(np.array([float(estimate)]), np.array([float(se) ** 2]), np.array([1.0]))

    @property
    def mean(self) -> float:
        return float(np.sum(self.weights * self.centers) / self.weights.sum())

    @property
    def sd(self) -> float:
        w = self.weights / self.weights.sum()
        second = np.sum(w * (self.variances + self.centers**2))
        return float(np.sqrt(max(second - self.mean**2, 0.0)))

    def log_marginal(self, mu: np.ndarray, tau2: np.ndarray) -> np.ndarray:
        """:math:`\\log \\sum_c w_c N(\\mu; x_c, v_c + \\tau^2)`, shape ``(len(tau2), len(mu))``."""
        w = self.weights / self.weights.sum()
        out = np.empty((len(tau2), len(mu)))
        for j, t2 in enumerate(tau2):  # one tau at a time: kernels x mu stays small
            var = self.variances[:, None] + t2
            logk = -0.5 * (mu[None, :] - self.centers[:, None]) ** 2 / var - 0.5 * np.log(2 * np.pi * var)
            out[j] = special.logsumexp(logk, axis=0, b=w[:, None])
        return out


@dataclass(frozen=True)
class GridPosterior:
    """The joint posterior of (tau, mu) on the grid: ``prob[j, k]`` sums to 1."""

    tau: np.ndarray
    mu: np.ndarray
    mu_step: float
    prob: np.ndarray


def tau_nodes(prior: HeterogeneityPrior, n_tau: int) -> np.ndarray:
    """Midpoints of ``n_tau`` equal-probability slices of the tau prior (one node for a fixed tau)."""
    if prior.fixed is not None:
        return np.array([prior.fixed])
    return prior.dist.ppf((np.arange(n_tau) + 0.5) / n_tau)


def mu_grid(prior: EffectPrior, likelihoods: list[Likelihood], n_mu: int) -> np.ndarray:
    """A uniform mu grid over the prior's central 1 - 2e-7 and 10 SDs around every kernel."""
    lo, hi = prior.dist.ppf([1e-7, 1 - 1e-7])
    for lik in likelihoods:
        sd = np.sqrt(lik.variances)
        lo, hi = min(lo, float(np.min(lik.centers - 10 * sd))), max(hi, float(np.max(lik.centers + 10 * sd)))
    return np.linspace(lo, hi, n_mu)


def posterior_grid(
    likelihoods: list[Likelihood],
    mu_prior: EffectPrior,
    tau_prior: HeterogeneityPrior,
    *,
    n_tau: int = 600,
    n_mu: int = 1601,
) -> GridPosterior:
    """The joint posterior of (tau, mu) given the study likelihoods (none: the prior)."""
    tau = tau_nodes(tau_prior, n_tau)
    mu = mu_grid(mu_prior, likelihoods, n_mu)
    log_post = np.broadcast_to(mu_prior.dist.logpdf(mu)[None, :], (len(tau), len(mu))).copy()
    for lik in likelihoods:
        log_post += lik.log_marginal(mu, tau**2)
    prob = np.exp(log_post - log_post.max())
    return GridPosterior(tau=tau, mu=mu, mu_step=float(mu[1] - mu[0]), prob=prob / prob.sum())


def cdf_quantiles(values: np.ndarray, weights: np.ndarray, probs: list[float], step: float = 0.0) -> list[float]:
    """Quantiles of a discrete distribution on sorted ``values``; with ``step`` > 0 each node's mass is
    spread uniformly over its grid cell (linear interpolation of the CDF between cell edges)."""
    order = np.argsort(values)
    v, w = values[order], weights[order] / weights.sum()
    if step > 0:
        edges = np.concatenate([[v[0] - step / 2], v + step / 2])
        cdf = np.concatenate([[0.0], np.cumsum(w)])
        return [float(np.interp(p, cdf, edges)) for p in probs]
    cdf = np.cumsum(w)
    return [float(v[min(np.searchsorted(cdf, p), len(v) - 1)]) for p in probs]


def _interval_probability(values: np.ndarray, weights: np.ndarray, step: float, margin: float) -> float:
    """P(|x| < margin) of a grid distribution whose node masses are spread over their cells."""
    lo = np.clip((values - step / 2 + margin) / step, 0, 1)  # share of each cell right of -margin
    hi = np.clip((margin - (values - step / 2)) / step, 0, 1)  # share left of +margin
    return float(np.sum(weights * np.clip(lo + hi - 1, 0, 1)) / weights.sum())


def normal_mixture(
    prob: np.ndarray, mean: np.ndarray, sd: np.ndarray, margin: float | None, level: float
) -> dict[str, float]:
    """Mean, SD, equal-tailed interval and P(|x| < margin) of sum_c prob_c N(mean_c, sd_c^2)."""
    keep = prob > prob.max() * 1e-14
    p, m, s = prob[keep] / prob[keep].sum(), mean[keep], sd[keep]
    total_mean = float(np.sum(p * m))
    total_sd = float(np.sqrt(max(np.sum(p * (s**2 + m**2)) - total_mean**2, 0.0)))
    safe = np.where(s > 0, s, 1.0)

    def cdf(x: float) -> float:
        return float(np.sum(p * np.where(s > 0, special.ndtr((x - m) / safe), (m <= x).astype(float))))

    lo, hi = float(np.min(m - 12 * s)) - 1e-9, float(np.max(m + 12 * s)) + 1e-9
    tail = (1 - level) / 2
    interval = [optimize.brentq(lambda x, q=q: cdf(x) - q, lo, hi, xtol=1e-10) for q in (tail, 1 - tail)]
    out = {"mean": total_mean, "sd": total_sd, "interval_low": interval[0], "interval_high": interval[1]}
    if margin is not None:
        out["prob_equivalence"] = cdf(margin) - cdf(-margin)
    return out


def new_study_probability(grid: GridPosterior, margin: float) -> float:
    """P(|theta_new| < margin) for a new study's effect theta_new ~ N(mu, tau^2)."""
    return _new_study(grid, margin, 0.95)["prob_equivalence"]


def _new_study(grid: GridPosterior, margin: float | None, level: float) -> dict[str, float]:
    tau = np.broadcast_to(grid.tau[:, None], grid.prob.shape)
    mu = np.broadcast_to(grid.mu[None, :], grid.prob.shape)
    return normal_mixture(grid.prob.ravel(), mu.ravel(), tau.ravel(), margin, level)


def _shrunken(grid: GridPosterior, lik: Likelihood, margin: float | None, level: float) -> dict[str, float]:
    """theta_i | all data: per grid cell the kernels' conditionals, moment-matched, then the grid mixture."""
    w = lik.weights / lik.weights.sum()
    mean = np.empty(grid.prob.shape)
    var = np.empty(grid.prob.shape)
    mu = grid.mu[None, :]
    for j, t2 in enumerate(grid.tau**2):
        v = lik.variances[:, None]
        logk = -0.5 * (mu - lik.centers[:, None]) ** 2 / (v + t2) - 0.5 * np.log(v + t2)
        r = np.exp(logk - logk.max(axis=0)) * w[:, None]
        r /= r.sum(axis=0)
        m_c = (lik.centers[:, None] * t2 + mu * v) / (v + t2)
        v_c = v * t2 / (v + t2)
        mean[j] = np.sum(r * m_c, axis=0)
        var[j] = np.sum(r * (v_c + m_c**2), axis=0) - mean[j] ** 2
    return normal_mixture(grid.prob.ravel(), mean.ravel(), np.sqrt(np.clip(var, 0, None)).ravel(), margin, level)


def summarize_grid(
    grid: GridPosterior,
    likelihoods: list[Likelihood],
    margin: float | None,
    level: float = 0.95,
) -> dict:
    """The numbers of a synthesis (module docstring): ``pooled``, ``tau``, ``new_study``, ``studies``."""
    tail = (1 - level) / 2
    pm = grid.prob.sum(axis=0)
    mean = float(np.sum(pm * grid.mu))
    sd = float(np.sqrt(max(np.sum(pm * grid.mu**2) - mean**2, 0.0)))
    q = cdf_quantiles(grid.mu, pm, [tail, 0.5, 1 - tail], grid.mu_step)
    pooled = {"mean": mean, "sd": sd, "median": q[1], "interval_low": q[0], "interval_high": q[2]}
    if margin is not None:
        pooled["prob_equivalence"] = _interval_probability(grid.mu, pm, grid.mu_step, margin)
    pt = grid.prob.sum(axis=1)
    tq = cdf_quantiles(grid.tau, pt, [tail, 0.5, 1 - tail])
    tau = {"mean": float(np.sum(pt * grid.tau)), "median": tq[1], "interval_low": tq[0], "interval_high": tq[2]}
    return {
        "pooled": pooled,
        "tau": tau,
        "new_study": _new_study(grid, margin, level),
        "studies": [_shrunken(grid, lik, margin, level) for lik in likelihoods],
        "grid": {
            "n_tau": len(grid.tau),
            "n_mu": len(grid.mu),
            "mu_low": float(grid.mu[0]),
            "mu_high": float(grid.mu[-1]),
        },
    }


def prior_probabilities(mu_prior: EffectPrior, tau_prior: HeterogeneityPrior, margin: float, n_tau: int = 600) -> dict:
    """The synthesis prior's P(|mu| < m) and P(|theta_new| < m) (what the data move)."""
    grid = posterior_grid([], mu_prior, tau_prior, n_tau=n_tau)
    pooled = float(mu_prior.dist.cdf(margin) - mu_prior.dist.cdf(-margin))
    return {"pooled": pooled, "new_study": new_study_probability(grid, margin)}


def kish_ess(weights: np.ndarray) -> float:
    """Kish's effective sample size of importance weights, (sum w)^2 / sum w^2."""
    w = np.asarray(weights, float)
    return float(w.sum() ** 2 / np.sum(w**2))


def normal_quantile(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))
