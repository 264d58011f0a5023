r"""Frequentist reference analyses of a two-arm repeated-measures trial with several outcomes (numpy only).

The data are wide arrays: ``arm`` (N,) 0 = reference, 1 = new; ``baseline`` (N, O); ``followup``
(N, T, O) with NaN for a missed value. Cells are :math:`k = t\cdot O + o`. Both analyses estimate, per
cell, the treatment difference :math:`d_k` in the model

.. math::

    y_{ik} = a_k + d_k\,\text{arm}_i + b_k\, x^b_{i,o(k)} + e_{ik}

(ANCOVA on the cell's own baseline; under randomisation :math:`d_k` is also the difference in mean
change from baseline).

* :func:`ancova_ols`: each cell on its own (complete cases of that cell), OLS, the classical SE
  with :math:`n - 3` degrees of freedom.
* :func:`mmrm_gls`: all cells jointly with an unstructured :math:`K\times K` covariance of
  :math:`e_{i\cdot}` (MMRM over visit x outcome). Maximum likelihood by alternating generalized least
  squares for the coefficients given :math:`\Sigma` (each patient on its observed cells,
  :math:`\Sigma_{S_iS_i}`) and the EM update of :math:`\Sigma` given the coefficients (the missing
  residuals replaced by their conditional expectation plus conditional covariance). The SE is the
  model-based one, :math:`\sqrt{[(\sum_i X_i^T\Sigma_{S_iS_i}^{-1}X_i)^{-1}]_{kk}}`, with :math:`\Sigma`
  rescaled by :math:`N/(N - 3)` (the REML-like small-sample correction of three coefficients per cell).
  With complete data and the same regressors in every cell this is seemingly-unrelated regression.
  Valid when missing follow-ups are missing at random given the baseline and the observed follow-ups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CellEstimates", "ancova_ols", "mmrm_gls", "reference_estimates"]


@dataclass(frozen=True)
class CellEstimates:
    """Per cell (T, O): the treatment difference, its standard error and the cell's patients."""

    estimate: np.ndarray
    se: np.ndarray
    n: np.ndarray


def _design(arm: np.ndarray, baseline_o: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(arm)), arm.astype(float), baseline_o])


def ancova_ols(arm: np.ndarray, baseline: np.ndarray, followup: np.ndarray) -> CellEstimates:
    """Per-cell OLS ANCOVA ``y ~ 1 + arm + own baseline`` on the cell's complete cases."""
    n_t, n_o = followup.shape[1:]
    est, se, n = (np.full((n_t, n_o), np.nan) for _ in range(3))
    for t in range(n_t):
        for o in range(n_o):
            keep = ~np.isnan(followup[:, t, o]) & ~np.isnan(baseline[:, o])
            x = _design(arm[keep], baseline[keep, o])
            y = followup[keep, t, o]
            coef, *_ = np.linalg.lstsq(x, y, rcond=None)
            resid = y - x @ coef
            sigma2 = resid @ resid / (len(y) - x.shape[1])
            cov = sigma2 * np.linalg.inv(x.T @ x)
            est[t, o], se[t, o], n[t, o] = coef[1], np.sqrt(cov[1, 1]), len(y)
    return CellEstimates(est, se, n)


def _patterns(observed: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(patient rows, observed cells) per missingness pattern with at least one observed cell."""
    codes = observed.astype(np.int64) @ (1 << np.arange(observed.shape[1], dtype=np.int64))
    out = []
    for code in np.unique(codes):
        rows = np.flatnonzero(codes == code)
        cells = np.flatnonzero(observed[rows[0]])
        if len(cells):
            out.append((rows, cells))
    return out


def _gls(y, xs, patterns, sigma):
    """GLS coefficients (3K,) and their information matrix, given the covariance ``sigma`` (K, K).

    ``xs`` (N, K, 3K): each patient's design, row k the cell's regressors in the cell's own columns.
    """
    p = xs.shape[2]
    info = np.zeros((p, p))
    score = np.zeros(p)
    for rows, cells in patterns:
        prec = np.linalg.inv(sigma[np.ix_(cells, cells)])
        x = xs[np.ix_(rows, cells)]  # (n, s, p)
        px = np.einsum("st,ntp->nsp", prec, x)
        info += np.einsum("nsp,nsq->pq", x, px)
        score += np.einsum("nsp,ns->p", px, y[np.ix_(rows, cells)])
    return np.linalg.solve(info, score), info


def _em_sigma(resid, observed, patterns, sigma):
    """One EM update of the residual covariance: E[r r^T | observed residuals] averaged over patients."""
    n, k = resid.shape
    total = np.zeros((k, k))
    for rows, cells in patterns:
        miss = np.setdiff1d(np.arange(k), cells)
        r = np.zeros((len(rows), k))
        r[:, cells] = resid[np.ix_(rows, cells)]
        cond = np.zeros((k, k))
        if len(miss):
            s_oo_inv = np.linalg.inv(sigma[np.ix_(cells, cells)])
            s_mo = sigma[np.ix_(miss, cells)]
            r[:, miss] = r[:, cells] @ (s_mo @ s_oo_inv).T
            cond[np.ix_(miss, miss)] = sigma[np.ix_(miss, miss)] - s_mo @ s_oo_inv @ s_mo.T
        total += r.T @ r + len(rows) * cond
    skipped = n - sum(len(rows) for rows, _ in patterns)  # patients with no follow-up at all
    return (total + skipped * sigma) / n


def mmrm_gls(
    arm: np.ndarray, baseline: np.ndarray, followup: np.ndarray, max_iter: int = 500, tol: float = 1e-10
) -> CellEstimates:
    """MMRM with an unstructured covariance over visit x outcome, by maximum likelihood (module docstring).

    Patients need a complete baseline; follow-ups may be missing (MAR).
    """
    n, n_t, n_o = followup.shape
    k = n_t * n_o
    y = followup.reshape(n, k)
    observed = ~np.isnan(y)
    y = np.where(observed, y, 0.0)
    cell_o = np.arange(k) % n_o
    xs = np.zeros((n, k, 3 * k))
    for c in range(k):
        xs[:, c, 3 * c : 3 * c + 3] = _design(arm, baseline[:, cell_o[c]])
    patterns = _patterns(observed)
    ols = ancova_ols(arm, baseline, followup)
    # start: the per-cell OLS residual variances (se^2 ~ 4 sigma^2 / n with equal arms), no correlation
    sigma = np.diag(np.maximum(ols.se.reshape(k) ** 2 * ols.n.reshape(k) / 4, 1e-8))
    coef = None
    for _ in range(max_iter):
        coef_new, _ = _gls(y, xs, patterns, sigma)
        resid = np.where(observed, y - np.einsum("nkp,p->nk", xs, coef_new), 0.0)
        sigma = _em_sigma(resid, observed, patterns, sigma)
        if coef is not None and np.max(np.abs(coef_new - coef)) < tol:
            coef = coef_new
            break
        coef = coef_new
    _, info = _gls(y, xs, patterns, sigma * n / (n - 3))
    cov = np.linalg.inv(info)
    index = 3 * np.arange(k) + 1
    return CellEstimates(
        coef[index].reshape(n_t, n_o), np.sqrt(np.diag(cov)[index]).reshape(n_t, n_o), observed.sum(0).reshape(n_t, n_o)
    )


def reference_estimates(
    arm: np.ndarray, baseline: np.ndarray, followup: np.ndarray, per_outcome: bool = False
) -> tuple[CellEstimates, CellEstimates]:
    """(per-cell OLS ANCOVA, MMRM): the MMRM over all cells jointly, or with ``per_outcome`` one MMRM per
    outcome over its visits (nothing shared across outcomes)."""
    ols = ancova_ols(arm, baseline, followup)
    if not per_outcome:
        return ols, mmrm_gls(arm, baseline, followup)
    parts = [mmrm_gls(arm, baseline[:, [o]], followup[:, :, [o]]) for o in range(baseline.shape[1])]
    joined = CellEstimates(*(np.concatenate([getattr(p, f) for p in parts], axis=1) for f in ("estimate", "se", "n")))
    return ols, joined
