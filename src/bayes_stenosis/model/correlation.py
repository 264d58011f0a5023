"""Correlations of sampling errors within patients: across follow-up times and across outcomes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from bayes_stenosis.model.inputs import ModelInputs
from bayes_stenosis.model.terms.threshold_joint import statement_dependence
from bayes_stenosis.spec import ModelSpec


def lkj_correlation(name: str, n: int, eta: float):
    r"""An n x n correlation matrix with an LKJ(eta) prior, built from canonical partial correlations.

    The partial correlation of variables i > j given variables 0..j-1 is
    :math:`2 B - 1` with :math:`B \sim Beta(\beta_j, \beta_j)`, :math:`\beta_j = \eta + (n - 2 - j)/2`
    (Lewandowski, Kurowicka & Joe 2009); the Cholesky factor follows from them, so the matrix is
    positive definite by construction (the same construction as Stan's ``cholesky_factor_corr``).
    Stored as ``name`` (the matrix) and ``{name}_cpc`` (the partial correlations on (0, 1)).
    """
    pairs = [(i, j) for j in range(n - 1) for i in range(j + 1, n)]
    beta = np.array([eta + (n - 2 - j) / 2 for _, j in pairs])
    cpc = 2 * pm.Beta(f"{name}_cpc", alpha=beta, beta=beta, shape=len(pairs)) - 1
    z = {pair: cpc[k] for k, pair in enumerate(pairs)}
    rows = []
    for i in range(n):
        row, remaining = [], pt.constant(1.0)
        for j in range(i):
            value = z[(i, j)] * pt.sqrt(remaining)
            row.append(value)
            remaining = remaining - value**2
        row.append(pt.sqrt(remaining))
        row.extend([pt.constant(0.0)] * (n - i - 1))
        rows.append(pt.stack(row))
    chol = pt.stack(rows)
    return pm.Deterministic(name, chol @ chol.T)


def error_correlations(inputs: ModelInputs, spec: ModelSpec, design: pd.DataFrame):
    """Correlation across follow-up times and across outcomes of sampling errors within patients.

    Shared by the arm-summary term (errors of an arm's mean changes) and the threshold terms (the test
    statistics of different cells, computed on the same patients: every statement's cell with the joint
    statement term, the between-arm statements' cells otherwise). Returns full-size (time x time,
    outcome x outcome) matrices; r_time / r_outcome exist only where two or more times / outcomes carry
    such evidence.
    """
    n_time, n_out = len(inputs.coords["time"]), len(inputs.coords["outcome"])
    times_used = {int(t) for b in inputs.arm_blocks for t in b.time_index}
    outs_used = {int(o) for b in inputs.arm_blocks for o in b.outcome_index}
    if len(design):
        # the joint statement term correlates every statement's cells, the per-statement path the between-arm ones
        joint = (statement_dependence(design, spec) or {}).get("treatment") == "joint"
        correlated = design if joint else design[design["comparison"] == "between"]
        times_used |= set(correlated["time_index"].astype(int))
        outs_used |= set(correlated["outcome_index"].astype(int))
    if len(inputs.contrasts) > 1:
        times_used |= {inputs.coords["time"].index(t) for t in inputs.contrasts["time"]}
        outs_used |= {inputs.coords["outcome"].index(o) for o in inputs.contrasts["outcome"]}
    times_used, outs_used = sorted(times_used), sorted(outs_used)
    if len(times_used) > 1:
        p = spec.correlation.time
        cap = spec.correlation.max_error_correlation
        r_time = pm.Deterministic("r_time", cap * pm.Beta("r_time_unit", alpha=p.alpha, beta=p.beta))
        R_time = (1 - r_time) * pt.eye(n_time) + r_time * pt.ones((n_time, n_time))
    else:
        R_time = pt.eye(n_time)
    if len(outs_used) > 1 and spec.correlation.outcome_structure != "independent":
        k = len(outs_used)
        if spec.correlation.outcome_structure == "lkj":
            R_out_used = lkj_correlation("outcome_error_corr", k, spec.correlation.outcome_lkj_eta)
        else:
            p = spec.correlation.outcome
            cap = spec.correlation.max_error_correlation
            r_out = pm.Deterministic("r_outcome", cap * pm.Beta("r_outcome_unit", alpha=p.alpha, beta=p.beta))
            R_out_used = (1 - r_out) * pt.eye(k) + r_out * pt.ones((k, k))
        idx = np.asarray(outs_used)
        # every outcome used: no scatter into an identity (nodes in every evaluation of the gradient)
        scattered = k < n_out
        R_out = pt.set_subtensor(pt.eye(n_out)[idx[:, None], idx[None, :]], R_out_used) if scattered else R_out_used
    else:
        R_out = pt.eye(n_out)
    return R_time, R_out
