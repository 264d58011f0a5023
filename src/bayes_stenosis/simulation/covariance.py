"""Covariance of a simulated patient's scores: the latent factors it is generated with, and exact moments."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # TrialTruth validates itself with latent_factors; only the types are needed here
    from bayes_stenosis.simulation.truths import TrialTruth

_PSD_TOL = 1e-10


def _psd_sqrt(matrix: np.ndarray, what: str) -> np.ndarray:
    """A factor ``L`` with ``L @ L.T == matrix``, refusing matrices that are not PSD."""
    eig = np.linalg.eigvalsh(matrix)
    if eig.min() < -_PSD_TOL:
        raise ValueError(f"{what} is not positive semi-definite (smallest eigenvalue {eig.min():.3g})")
    try:
        return np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:  # singular but PSD (e.g. time_corr = 1)
        values, vectors = np.linalg.eigh(matrix)
        return vectors * np.sqrt(np.clip(values, 0, None))


def _innovation_outcome_corr(truth: TrialTruth) -> np.ndarray:
    rho = np.array([o.rho for o in truth.outcomes])
    s = np.sqrt(1 - rho**2)
    return truth.outcome_corr * (1 - np.outer(rho, rho)) / np.outer(s, s)


def _time_matrix(truth: TrialTruth) -> np.ndarray:
    n_t = len(truth.follow_up)
    return np.full((n_t, n_t), truth.time_corr) + (1 - truth.time_corr) * np.eye(n_t)


def latent_factors(truth: TrialTruth) -> tuple[np.ndarray, np.ndarray]:
    """Factors of R (baseline) and of P (x) C (innovations), or ValueError."""
    factor_r = _psd_sqrt(truth.outcome_corr, "outcome_corr")
    c = _innovation_outcome_corr(truth)
    if np.any(np.abs(c) > 1 + 1e-12):
        raise ValueError(
            "this outcome_corr and these rho values cannot hold together: the innovation "
            "correlation R[o,o'](1-rho_o rho_o')/sqrt((1-rho_o^2)(1-rho_o'^2)) exceeds 1"
        )
    factor_c = _psd_sqrt(
        c,
        "the innovation correlation "
        "C[o,o'] = R[o,o'](1-rho_o rho_o')/sqrt((1-rho_o^2)(1-rho_o'^2)) "
        "(outcome_corr is incompatible with the rho values)",
    )
    factor_p = _psd_sqrt(_time_matrix(truth), "the time correlation matrix (time_corr too negative)")
    return factor_r, np.kron(factor_p, factor_c)


def score_correlation(truth: TrialTruth) -> np.ndarray:
    """The exact correlation matrix of one patient's scores before rounding and clipping.

    Index ``k * O + o`` for time index ``k`` (0 = baseline, then the follow-up times) and outcome
    ``o``; both arms share it. With :math:`D = \\operatorname{diag}(\\rho)`:
    :math:`\\Sigma_{00} = \\Sigma_{tt} = R`, :math:`\\Sigma_{0t} = R D`,
    :math:`\\Sigma_{tt'} = D R D + \\tau (R - D R D)` for :math:`t \\ne t'`.
    """
    r = truth.outcome_corr
    d = np.diag([o.rho for o in truth.outcomes])
    drd = d @ r @ d
    k = len(truth.times)
    n_o = len(truth.outcomes)
    out = np.empty((k * n_o, k * n_o))
    for i in range(k):
        for j in range(k):
            if i == j:
                block = r
            elif i == 0:
                block = r @ d
            elif j == 0:
                block = d @ r
            else:
                block = drd + truth.time_corr * (r - drd)
            out[i * n_o : (i + 1) * n_o, j * n_o : (j + 1) * n_o] = block
    return out


def change_covariance(truth: TrialTruth) -> np.ndarray:
    """The exact within-arm covariance of one patient's changes from baseline, natural units.

    Index ``t * O + o`` over follow-up times and outcomes. Its diagonal is
    :math:`2 \\sigma_o^2 (1 - \\rho_o)`. Before rounding and clipping.
    """
    n_o, n_t = len(truth.outcomes), len(truth.follow_up)
    sd = np.tile([o.sd for o in truth.outcomes], n_t + 1)
    cov = score_correlation(truth) * np.outer(sd, sd)
    contrast = np.hstack([-np.tile(np.eye(n_o), (n_t, 1)), np.eye(n_t * n_o)])
    return contrast @ cov @ contrast.T
