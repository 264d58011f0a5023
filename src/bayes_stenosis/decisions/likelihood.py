"""The likelihood approximation of the treatment differences: the posterior's normal approximation with
the prior divided out, for meta-analysts who bring their own prior (``approximations.json``, key
``likelihood``).

With a normal prior :math:`N(m_0, \\Sigma_0)` and a normal likelihood :math:`N(\\hat d; \\delta, V)`,
the posterior is normal with precision :math:`\\Sigma_1^{-1} = \\Sigma_0^{-1} + V^{-1}` and
:math:`\\Sigma_1^{-1} m_1 = \\Sigma_0^{-1} m_0 + V^{-1} \\hat d`. Dividing the prior out inverts this:

.. math::

    V^{-1} = \\Sigma_1^{-1} - \\Sigma_0^{-1}, \\qquad \\hat d = V (\\Sigma_1^{-1} m_1 - \\Sigma_0^{-1} m_0).

It is exact (up to Monte Carlo error in :math:`m_1, \\Sigma_1`) when the prior and the likelihood of
delta are both normal; otherwise it is the normal likelihood that, combined with the prior's normal
approximation, reproduces the posterior's first two moments. Pure numpy: the caller supplies the prior's
parameters (no model spec here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_stenosis.decisions.approximation import correlation_matrix

#: Smallest eigenvalue of the likelihood precision, relative to the largest, accepted as positive:
#: below it the posterior is (within Monte Carlo error) no narrower than the prior in some direction,
#: and the division does not define a likelihood.
MIN_RELATIVE_EIGENVALUE = 1e-6


@dataclass(frozen=True)
class PriorNormal:
    """A normal approximation of the prior of the standardized treatment differences (time-major cells).

    Attributes
    ----------
    mean, covariance
        Mean vector and covariance matrix, standardized units (natural units / standardising SD).
    exact
        True when the prior of delta IS this normal (no approximation).
    method
        How it was obtained, in words (recorded in ``approximations.json``).
    """

    mean: np.ndarray
    covariance: np.ndarray
    exact: bool
    method: str


def normal_prior(
    family: str,
    mu: float,
    sigma: float,
    n_time: int,
    n_outcome: int,
    *,
    pooled: bool,
    tau_scale: float,
) -> PriorNormal:
    """The prior of delta[t, o] (standardized) when the prior set is normal: its exact first two moments.

    ``delta[t, o] = Delta[t] + tau z[t, o]`` with ``Delta[t] ~ N(mu, sigma^2)`` independent over time,
    ``tau ~ HalfNormal(tau_scale)``, ``z ~ N(0, 1)`` (outcomes pooled), or ``delta[t, o] = Delta[t, o] ~
    N(mu, sigma^2)`` independent per cell (no pooling, or one outcome). Pooled: ``E[tau^2] = tau_scale^2``,
    so ``Cov(delta[t, o], delta[t', o']) = [t = t'] sigma^2 + [t = t', o = o'] tau_scale^2``; the prior is
    then a scale mixture of normals (heavier tails), so the normal with these moments is an approximation.

    Raises
    ------
    ValueError
        ``family`` is not ``"normal"`` (a Student-t prior is approximated from its draws:
        :func:`moment_matched_prior`).
    """
    if family != "normal":
        raise ValueError(f"normal_prior needs a normal prior set (got {family!r}); use moment_matched_prior")
    k = n_time * n_outcome
    same_time = np.kron(np.eye(n_time), np.ones((n_outcome, n_outcome)))
    pooled = pooled and n_outcome > 1  # one outcome: delta = Delta, no tau
    if pooled:
        cov = sigma**2 * same_time + tau_scale**2 * np.eye(k)
        method = (
            f"exact moments of the prior: Delta[t] ~ N({mu:g}, {sigma:.4g}^2), outcomes pooled with "
            f"tau ~ HalfNormal({tau_scale:g}); the tau mixture is not normal, so the normal with these moments "
            "is an approximation"
        )
    else:
        cov = sigma**2 * np.eye(k)
        method = f"exact: delta[t, o] ~ N({mu:g}, {sigma:.4g}^2) independently per cell"
    return PriorNormal(np.full(k, float(mu)), cov, exact=not pooled, method=method)


def moment_matched_prior(prior_draws_std: np.ndarray, what: str) -> PriorNormal:
    """The normal with the mean and covariance of prior draws (``(n_draws, cells)``, standardized units).

    Used where the prior of delta is not normal (a Student-t prior set): the division then removes
    the prior's first two moments, not the prior itself, and the result says so.
    """
    x = np.asarray(prior_draws_std, dtype=float)
    if x.ndim != 2 or x.shape[0] < x.shape[1] + 2:
        raise ValueError(f"need (n_draws, cells) prior draws with more draws than cells (got {x.shape})")
    cov = np.atleast_2d(np.cov(x, rowvar=False, ddof=1))
    method = (
        f"moment-matched normal of {x.shape[0]:,} prior draws of delta ({what}): the prior is not normal, "
        "so only its mean and covariance are divided out"
    )
    return PriorNormal(x.mean(axis=0), cov, exact=False, method=method)


def divide_out_prior(
    post_mean: np.ndarray,
    post_cov: np.ndarray,
    prior: PriorNormal,
    keep: np.ndarray | None = None,
) -> dict:
    """The normal likelihood implied by a normal posterior and a normal prior (standardized units).

    Parameters
    ----------
    post_mean, post_cov
        The posterior's normal approximation (all cells, time-major).
    prior
        The prior's normal approximation on the same cells.
    keep
        Boolean mask of the cells to keep (default all): cells without evidence have no likelihood
        (their posterior is their prior), so they are marginalised out of both first. The marginal
        of a normal is normal, and a likelihood of the kept cells alone leaves the others' prior
        untouched, so this is the same division restricted to them.

    Returns
    -------
    dict
        ``status``: ``"ok"`` with ``mean``, ``covariance`` (the likelihood's, standardized) and
        ``min_relative_eigenvalue``; or ``"not_positive_definite"`` with ``reason`` (the posterior is
        not narrower than the prior in some direction: there is no normal likelihood to report).
    """
    keep = np.ones(len(post_mean), bool) if keep is None else np.asarray(keep, bool)
    m1, s1 = np.asarray(post_mean, float)[keep], np.asarray(post_cov, float)[np.ix_(keep, keep)]
    m0, s0 = prior.mean[keep], prior.covariance[np.ix_(keep, keep)]
    p1, p0 = np.linalg.inv(s1), np.linalg.inv(s0)
    precision = p1 - p0
    precision = (precision + precision.T) / 2
    eig = np.linalg.eigvalsh(precision)
    relative = float(eig.min() / np.abs(eig).max()) if np.abs(eig).max() > 0 else 0.0
    if relative < MIN_RELATIVE_EIGENVALUE:
        return {
            "status": "not_positive_definite",
            "min_relative_eigenvalue": relative,
            "reason": (
                "posterior precision minus prior precision is not positive definite (smallest eigenvalue "
                f"{relative:.3g} of the largest): in some direction the posterior is no narrower than the "
                "prior, so the data's information cannot be separated from the prior by a normal division"
            ),
        }
    cov = np.linalg.inv(precision)
    cov = (cov + cov.T) / 2
    mean = cov @ (p1 @ m1 - p0 @ m0)
    return {"status": "ok", "mean": mean, "covariance": cov, "min_relative_eigenvalue": relative}


def likelihood_block(
    posterior: dict,
    prior: PriorNormal,
    scale: np.ndarray,
    *,
    keep: np.ndarray | None = None,
    gaussian_evidence: bool = False,
    notes: list[str] | None = None,
) -> dict:
    """The ``likelihood`` entry of ``approximations.json``: the posterior's normal approximation
    (:func:`~bayes_stenosis.decisions.normal_approximation`) with ``prior`` divided out.

    Parameters
    ----------
    posterior
        The posterior approximation (``names``, ``mean_std``, ``covariance_std``).
    prior
        The prior's normal approximation on the same cells (standardized).
    scale
        Standardising SD of each name (natural units per standardized unit).
    keep
        The cells with evidence (default all); the others have no likelihood.
    gaussian_evidence
        Whether the likelihood of delta is normal in the kept cells (one reported contrast with its SE,
        say): with an exact normal prior the division is then exact up to Monte Carlo error.
    notes
        What the reader should know about this study's evidence (added to ``notes``).

    Returns
    -------
    dict
        Plain JSON content: ``approximates`` (``"likelihood"``), ``status``, ``description``, ``method``,
        ``exact``, ``notes``, ``prior_normal`` (the prior approximation divided out), ``names`` (the kept
        cells); with status ``"ok"`` also ``mean_natural``, ``se_natural``, ``covariance_natural``,
        ``mean_std``, ``covariance_std``, ``correlation``; otherwise ``reason``.
    """
    names = list(posterior["names"])
    keep = np.ones(len(names), bool) if keep is None else np.asarray(keep, bool)
    scale = np.asarray(scale, dtype=float)
    block = _what_is_divided(prior, exact=bool(prior.exact and gaussian_evidence), notes=notes or [])
    block["names"] = [n for n, k in zip(names, keep, strict=True) if k]
    if not keep.any():
        return block | {"status": "not_available", "reason": "no cell has evidence: there is no likelihood"}
    result = divide_out_prior(np.asarray(posterior["mean_std"]), np.asarray(posterior["covariance_std"]), prior, keep)
    if result["status"] != "ok":
        return block | {
            "status": result["status"],
            "reason": result["reason"],
            "min_relative_eigenvalue": result["min_relative_eigenvalue"],
        }
    return block | {"status": "ok"} | _likelihood_numbers(result, scale[keep])


#: What the ``likelihood`` entry is and how to use it, in ``approximations.json``.
LIKELIHOOD_DESCRIPTION = (
    "LIKELIHOOD: the normal approximation of the posterior with the prior divided out on the standardized "
    "scale (precision = posterior precision - prior precision; mean = covariance x (posterior precision x "
    "posterior mean - prior precision x prior mean)), then multiplied by the standardising SDs. Use "
    "mean_natural and covariance_natural as this study's estimates and their (co)variances in a "
    "meta-analysis with your own prior; the top-level numbers include this run's prior."
)


def _what_is_divided(prior: PriorNormal, *, exact: bool, notes: list[str]) -> dict:
    """The likelihood entry's description: the method, whether it is exact, the notes and the prior divided out."""
    if exact:
        accuracy = "exact up to Monte Carlo error: normal prior and normal likelihood of delta"
    else:
        accuracy = (
            "approximate: the prior or the likelihood of delta is not normal; the division matches the "
            "posterior's first two moments, not its shape (see marginal_fit for how normal the posterior is)"
        )
    return {
        "approximates": "likelihood",
        "description": LIKELIHOOD_DESCRIPTION,
        "method": "normal division; prior: " + prior.method,
        "exact": exact,
        "notes": [accuracy, *notes],
        "prior_normal": {
            "mean_std": [float(v) for v in prior.mean],
            "covariance_std": prior.covariance.astype(float).tolist(),
            "exact": bool(prior.exact),
            "method": prior.method,
        },
    }


def _likelihood_numbers(result: dict, scale: np.ndarray) -> dict:
    """The divided-out likelihood (:func:`divide_out_prior`'s ``"ok"`` result) on both scales, plain JSON;
    ``scale``: the standardising SD of each kept cell."""
    cov_nat = result["covariance"] * np.outer(scale, scale)
    return {
        "min_relative_eigenvalue": result["min_relative_eigenvalue"],
        "mean_natural": [float(v) for v in result["mean"] * scale],
        "se_natural": [float(v) for v in np.sqrt(np.diag(cov_nat))],
        "covariance_natural": cov_nat.tolist(),
        "mean_std": [float(v) for v in result["mean"]],
        "covariance_std": result["covariance"].tolist(),
        "correlation": correlation_matrix(result["covariance"]).tolist(),
    }
