r"""Closed forms of the normal-normal random-effects model, written independently of the package's grid
engine, for the synthesis tests.

With normal likelihoods :math:`y_i \sim N(\theta_i, s_i^2)`, :math:`\theta_i \sim N(\mu, \tau^2)` and
:math:`\mu \sim N(m_0, s_0^2)`:

* fixed :math:`\tau`: :math:`\mu \mid y \sim N(m_\tau, v_\tau)` with :math:`v_\tau^{-1} = s_0^{-2} +
  \sum_i (s_i^2 + \tau^2)^{-1}` and :math:`m_\tau = v_\tau (m_0 s_0^{-2} + \sum_i y_i (s_i^2 + \tau^2)^{-1})`;
  the study effects are jointly normal a posteriori (Gaussian conditioning, :func:`study_effects_fixed_tau`);
* unknown :math:`\tau`: :math:`p(\tau \mid y) \propto p(\tau)\, N(y; m_0 1, \operatorname{diag}(s^2 + \tau^2)
  + s_0^2 11^T)`, integrated over :math:`\tau` with ``scipy.integrate.quad`` (adaptive quadrature, not a
  grid), mixing the conjugate :math:`\mu \mid \tau, y`.
"""

from __future__ import annotations

import numpy as np
from scipy import integrate, stats


def mu_given_tau(y: np.ndarray, se: np.ndarray, tau: float, m0: float, s0: float) -> tuple[float, float]:
    """Posterior mean and variance of mu given tau (conjugate normal)."""
    w = 1.0 / (se**2 + tau**2)
    v = 1.0 / (1.0 / s0**2 + w.sum())
    return float(v * (m0 / s0**2 + np.sum(w * y))), float(v)


def study_effects_fixed_tau(y, se, tau, m0, s0) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and SDs of theta_i given y, for a fixed tau (joint Gaussian conditioning)."""
    k = len(y)
    prior_cov = s0**2 * np.ones((k, k)) + tau**2 * np.eye(k)
    prec = np.linalg.inv(prior_cov) + np.diag(1 / se**2)
    cov = np.linalg.inv(prec)
    mean = cov @ (np.linalg.inv(prior_cov) @ np.full(k, m0) + y / se**2)
    return mean, np.sqrt(np.diag(cov))


def tau_integrated(y, se, tau_dist, m0: float, s0: float, margin: float) -> dict[str, float]:
    """Posterior mean and SD of mu, P(|mu| < margin), P(|theta_new| < margin) and E[tau], with tau
    integrated out by adaptive quadrature."""
    k = len(y)

    def post(t: float) -> float:
        cov = np.diag(se**2 + t**2) + s0**2 * np.ones((k, k))
        return tau_dist.pdf(t) * stats.multivariate_normal(np.full(k, m0), cov).pdf(y)

    def expect(f) -> float:
        return integrate.quad(lambda t: post(t) * f(t), 0, np.inf, limit=400, epsabs=0, epsrel=1e-10)[0]

    z = expect(lambda t: 1.0)

    def moments(t):
        return mu_given_tau(y, se, t, m0, s0)

    mean = expect(lambda t: moments(t)[0]) / z
    second = expect(lambda t: moments(t)[1] + moments(t)[0] ** 2) / z

    def p_inside(t, extra):
        m, v = moments(t)
        sd = np.sqrt(v + extra(t))
        return stats.norm.cdf(margin, m, sd) - stats.norm.cdf(-margin, m, sd)

    return {
        "mean": mean,
        "sd": float(np.sqrt(second - mean**2)),
        "prob_pooled": expect(lambda t: p_inside(t, lambda _: 0.0)) / z,
        "prob_new": expect(lambda t: p_inside(t, lambda s: s**2)) / z,
        "tau_mean": expect(lambda t: t) / z,
    }


#: The grid engine's tolerance against a closed form, in posterior SDs (probabilities: absolute). The grid is
#: deterministic: its discretisation error is about 1e-5 SD on the tests' examples, 1e-3 is 100 times that.
GRID_TOL = 1e-3
