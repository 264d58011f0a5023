"""Closed forms of a one-cell equivalence design with a known SD, for the design tests.

With estimate :math:`\\hat d \\sim N(\\delta, se^2)` and a normal analysis prior :math:`N(0, s_p^2)` (or a
flat one, :math:`s_p = \\infty`), the posterior is :math:`N(w \\hat d, w\\, se^2)` with
:math:`w = s_p^2 / (s_p^2 + se^2)`; P(|delta| < m) is decreasing in :math:`|\\hat d|`, so the rule
declares equivalence exactly when :math:`|\\hat d| < c`, and

.. math:: P(\\text{declare} \\mid \\delta) = \\Phi((c - \\delta)/se) - \\Phi((-c - \\delta)/se).

Assurance under a design prior is that integrated over the prior (numerically here, independently of
the package's simulation).
"""

from __future__ import annotations

import math

from scipy import integrate, optimize, stats


def region_halfwidth(se: float, margin: float, threshold: float, prior_sd: float = math.inf) -> float:
    """``c``: the rule declares equivalence iff |d_hat| < c (0 when it never does)."""
    w = 1.0 if math.isinf(prior_sd) else prior_sd**2 / (prior_sd**2 + se**2)
    s1 = math.sqrt(w) * se

    def prob(mean: float) -> float:
        return stats.norm.cdf((margin - mean) / s1) - stats.norm.cdf((-margin - mean) / s1)

    if prob(0.0) < threshold:
        return 0.0
    return optimize.brentq(lambda m: prob(m) - threshold, 0.0, margin) / w


def prob_declare(delta: float, se: float, margin: float, threshold: float, prior_sd: float = math.inf) -> float:
    """P(declare equivalence | true delta)."""
    c = region_halfwidth(se, margin, threshold, prior_sd)
    return stats.norm.cdf((c - delta) / se) - stats.norm.cdf((-c - delta) / se)


def assurance(mu0: float, s0: float, se: float, margin: float, threshold: float, prior_sd: float = math.inf) -> float:
    """P(declare) integrated over the design prior N(mu0, s0^2), by quadrature."""
    value, _ = integrate.quad(
        lambda d: prob_declare(d, se, margin, threshold, prior_sd) * stats.norm.pdf(d, mu0, s0),
        mu0 - 10 * s0,
        mu0 + 10 * s0,
        limit=200,
    )
    return value


def wrong_equivalent_beyond(mu0: float, s0: float, se: float, margin: float, threshold: float) -> float:
    """P(declare and |delta| >= margin) under the design prior N(mu0, s0^2) (flat analysis prior)."""
    total = 0.0
    for lo, hi in ((-math.inf, -margin), (margin, math.inf)):
        value, _ = integrate.quad(
            lambda d: prob_declare(d, se, margin, threshold) * stats.norm.pdf(d, mu0, s0), lo, hi, limit=200
        )
        total += value
    return total
