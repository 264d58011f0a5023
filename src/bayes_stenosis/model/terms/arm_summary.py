"""The arm-summary term: an arm's observed mean changes, with their sampling-error covariance and the
reported SDs as estimates of the true change SDs."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_stenosis.model.inputs import ArmSummaryBlock, ModelInputs
from bayes_stenosis.spec import ModelSpec


def _reported_sd(name: str, n, reported: np.ndarray, log_sigma: float):
    """A true SD (standardized) with a log-normal prior, and the reported SD as its estimate.

    ``log sd = log_sigma * z``, ``z ~ N(0, 1)``; :math:`s^2 \\sim Gamma((n-1)/2, (n-1)/(2 sd^2))`, i.e.
    :math:`(n-1) s^2 / sd^2 \\sim \\chi^2_{n-1}`. Creates ``z_{name}``, ``{name}`` and ``obs_{name}``
    (the observed squared SDs are the data container ``{name}_sq``).
    """
    z = pm.Normal(f"z_{name}", 0.0, 1.0, shape=len(reported))
    sd = pm.Deterministic(name, pt.exp(log_sigma * z))
    pm.Gamma(
        f"obs_{name}",
        alpha=(n - 1) / 2,
        beta=(n - 1) / (2 * sd**2),
        observed=pm.Data(f"{name}_sq", reported**2),
    )
    return sd


def arm_block_error_cov(inputs: ModelInputs, spec: ModelSpec, block: ArmSummaryBlock, rho, R_time, R_out):
    """Covariance of one arm's mean-change sampling errors, and its observed-means container.

    :math:`D (R_{time} \\otimes R_{outcome}) D` with :math:`D = diag(\\sigma^c_k/\\sqrt{n_k})`; the true
    change SDs :math:`\\sigma^c_k` are parameters informed by the reported SDs (:func:`_reported_sd`).
    """
    sd_sigma = spec.scale.sd_log_sigma
    name = inputs.coords["arm"][block.arm_index]
    k = len(block.time_index)
    is_change = ~np.isnan(block.sd_change)
    sigma_change = pt.zeros(k)
    n_all = pm.Data(f"n_{name}", block.n)
    if is_change.any():
        ic = np.flatnonzero(is_change)
        sd_c = _reported_sd(f"sd_change_{name}", n_all[ic], block.sd_change[ic], sd_sigma)
        sigma_change = pt.set_subtensor(sigma_change[ic], sd_c)
    if (~is_change).any():
        isc = np.flatnonzero(~is_change)
        # one baseline SD per outcome of this arm (observed once, at the first cell carrying
        # it), one follow-up SD per cell
        outs = block.outcome_index[isc]
        uniq, inv = np.unique(outs, return_inverse=True)
        first = np.array([np.flatnonzero(inv == u)[0] for u in range(len(uniq))])
        nb = pm.Data(f"n_baseline_{name}", block.n_baseline[isc][first])
        sd_b = _reported_sd(f"sd_baseline_{name}", nb, block.sd_baseline[isc][first], sd_sigma)
        sd_f = _reported_sd(f"sd_followup_{name}", n_all[isc], block.sd_followup[isc], sd_sigma)
        sb = sd_b[inv]
        r = rho[outs]
        sd_c_scores = pt.sqrt(sb**2 + sd_f**2 - 2 * r * sb * sd_f)
        sigma_change = pt.set_subtensor(sigma_change[isc], sd_c_scores)
    se = sigma_change / pt.sqrt(n_all)
    corr = (
        R_time[block.time_index[:, None], block.time_index[None, :]]
        * R_out[block.outcome_index[:, None], block.outcome_index[None, :]]
    )
    cov = se[:, None] * corr * se[None, :]
    observed = pm.Data(f"mean_change_{name}", block.mean_change)
    return cov, observed


def add_arm_summary_terms(model, inputs: ModelInputs, spec: ModelSpec, change, rho, R_time, R_out) -> None:
    arms = inputs.coords["arm"]
    for block in inputs.arm_blocks:
        cov, observed = arm_block_error_cov(inputs, spec, block, rho, R_time, R_out)
        mean = change[block.arm_index, block.time_index, block.outcome_index]
        pm.MvNormal(f"obs_mean_change_{arms[block.arm_index]}", mu=mean, cov=cov, observed=observed)
