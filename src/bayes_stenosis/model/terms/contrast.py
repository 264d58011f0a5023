"""The contrast term: published between-arm estimates with their standard errors."""

from __future__ import annotations

import numpy as np
import pymc as pm

from bayes_stenosis.model.inputs import ModelInputs


def add_contrast_terms(inputs: ModelInputs, delta, scale, R_time=None, R_out=None) -> None:
    """Reported differences ~ N(delta_natural, SE); several cells of one trial jointly, with their
    estimation errors correlated as R_time x R_outcome (the same patients give every estimate).
    ``scale``: the outcomes' standardising SDs (the model's ``outcome_scale`` data container)."""
    con = inputs.contrasts
    t_idx = np.array([inputs.coords["time"].index(t) for t in con["time"]])
    o_idx = np.array([inputs.coords["outcome"].index(o) for o in con["outcome"]])
    mean = delta[t_idx, o_idx] * scale[o_idx]
    se = pm.Data("contrast_se", con["se_derived"].to_numpy(dtype=float), dims="contrast_row")
    estimate = pm.Data("contrast_estimate", con["estimate_nmr"].to_numpy(dtype=float), dims="contrast_row")
    if R_time is None:
        pm.Normal("obs_contrast", mu=mean, sigma=se, observed=estimate, dims="contrast_row")
        return
    corr = R_time[t_idx[:, None], t_idx[None, :]] * R_out[o_idx[:, None], o_idx[None, :]]
    cov = se[:, None] * corr * se[None, :]
    pm.MvNormal("obs_contrast", mu=mean, cov=cov, observed=estimate, dims="contrast_row")
