r"""The fast path: each simulated confirmatory trial analysed in closed form.

A trial of ``n`` patients per arm reports, per cell, the difference of the arms' mean changes. With a
known per-patient covariance of changes :math:`\Sigma` (SDs and correlations: :class:`DesignInputs`),
the estimates are

.. math::

    \hat d \mid \delta \sim N(\delta, V_n), \qquad V_n = \tfrac{2}{n} \Sigma,

and under a normal analysis prior :math:`N(m_0, S_0)` (or a flat one) the trial's posterior is normal,
:math:`S_1 = (S_0^{-1} + V_n^{-1})^{-1}`, :math:`m_1 = S_1 (S_0^{-1} m_0 + V_n^{-1} \hat d)`. A cell is
declared equivalent when :math:`P(|\delta_c| < M_c) = \Phi((M_c - m_{1c}) / s_c) - \Phi((-M_c - m_{1c}) / s_c)`
reaches the threshold; a joint scope when the probability that every cell of it is inside its margin
(a multivariate normal rectangle, Genz's algorithm) does.

Adequate when the known-SD normal approximation is: a confirmatory trial's arm means are close to
normal and its SD is estimated on ``2n - 2`` df (at ``n = 40`` the t quantile 1.99 against 1.96,
intervals 1.5 % wider), and the analysis prior's normal approximation matters little once the
trial's SE is well under the prior's SD. Each trial draws its truth and one standard-normal vector
of errors, used for every ``n`` (common random numbers: the curve over ``n`` is smooth).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from bayes_stenosis.design.inputs import DesignInputs

# scipy >= 1.15 seeds the Genz integration with ``rng``, older versions with ``random_state``
_MVN_SEED = "rng" if "rng" in inspect.signature(stats.multivariate_normal.cdf).parameters else "random_state"


def normal_posterior(
    d_hat: np.ndarray, v: np.ndarray, prior_mean: np.ndarray | None, prior_cov: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the posterior of delta given estimates ``d_hat`` with covariance ``v``."""
    if prior_mean is None:
        return d_hat, v
    p0, pv = np.linalg.inv(prior_cov), np.linalg.inv(v)
    s1 = np.linalg.inv(p0 + pv)
    s1 = (s1 + s1.T) / 2
    return s1 @ (p0 @ prior_mean + pv @ d_hat), s1


def cell_prob_equivalence(mean: np.ndarray, sd: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """P(|delta| < margin) per cell under independent normal marginals."""
    return stats.norm.cdf((margin - mean) / sd) - stats.norm.cdf((-margin - mean) / sd)


def joint_declared(
    cells: np.ndarray, mean: np.ndarray, cov: np.ndarray, margin: np.ndarray, threshold: float, rng
) -> tuple[bool, float]:
    """Whether P(every cell inside its margin) >= threshold, and that probability (NaN when a bound
    decided it: it is at most the smallest cell's, and at least 1 - sum of the cells' complements)."""
    if cells.min() < threshold:
        return False, float("nan")
    if 1 - np.sum(1 - cells) >= threshold:
        return True, float("nan")
    prob = stats.multivariate_normal.cdf(
        margin, mean=mean, cov=cov, lower_limit=-margin, abseps=1e-5, releps=0, **{_MVN_SEED: rng}
    )
    return bool(prob >= threshold), float(prob)


@dataclass(frozen=True)
class FastTrial:
    """One simulated confirmatory trial at every per-arm ``n`` of ``ns``, analysed in closed form (a
    :class:`bayes_stenosis.engine.TrialTask`).

    Rows, per ``n``: one per cell (``scope="cell"``), per time (``joint_time``: all outcomes) and one for
    all cells (``joint_all``), with the truth, whether it is inside the margin(s), the trial's
    P(equivalence) and whether the rule declares equivalence.
    """

    inputs: DesignInputs
    ns: tuple[int, ...]
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        if not self.ns or min(self.ns) < 2:
            raise ValueError(f"per-arm n must be >= 2 (got {self.ns})")
        object.__setattr__(self, "fingerprint", f"fast-v1:{self.inputs.fingerprint()}:{','.join(map(str, self.ns))}")

    def __call__(self, trial: int, rng: np.random.Generator) -> list[dict]:
        x = self.inputs
        truth, sigma = x.sample(rng)
        z = np.linalg.cholesky(sigma) @ rng.standard_normal(len(truth))
        inside = np.abs(truth) < x.margins
        rows = []
        for n in self.ns:
            v = 2.0 * sigma / n
            mean, cov = normal_posterior(truth + np.sqrt(2.0 / n) * z, v, x.prior_mean, x.prior_cov)
            prob = cell_prob_equivalence(mean, np.sqrt(np.diag(cov)), x.margins)
            declared = prob >= x.threshold
            for c, (t, o) in enumerate(x.cells):
                rows.append(row(n, "cell", t, o, truth[c], inside[c], prob[c], declared[c]))
            scopes = [("joint_time", t, [i for i, (tt, _) in enumerate(x.cells) if tt == t]) for t in x.times]
            scopes.append(("joint_all", float("nan"), list(range(len(truth)))))
            for scope, t, idx in scopes:
                ok, p = joint_declared(prob[idx], mean[idx], cov[np.ix_(idx, idx)], x.margins[idx], x.threshold, rng)
                rows.append(row(n, scope, t, "all", float("nan"), inside[idx].all(), p, ok))
        return rows


def row(n, scope, time, outcome, truth, inside, prob, declared) -> dict:
    """One row of a trial's results (booleans as 0 / 1: they survive a CSV round trip as they are)."""
    return {
        "n_per_arm": int(n),
        "scope": scope,
        "time": float(time),
        "outcome": outcome,
        "truth": float(truth),
        "truth_inside": int(bool(inside)),
        "prob_equivalence": float(prob),
        "declared_equivalent": int(bool(declared)),
    }
