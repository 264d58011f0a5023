"""The joint statement term's GHK recursion as the elementwise graph it was before the fused operation.

:func:`unrolled_whitened_log_density` is ``threshold_joint.whitened_log_density`` as of commit fb91827
(one ``interval_transform`` per latent, unrolled): the reference the fused
:class:`~bayes_stenosis.model.kernels.ghk.GHKLogDensity` is tested against (tests/model/test_ghk_kernel.py).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from bayes_stenosis.model.terms.intervals import Interval, interval_transform


def cell_interval(iv: Interval, k: int) -> Interval:
    """Cell ``k`` of a vector of intervals."""
    return Interval(iv.lo[k], iv.hi[k], iv.lo_inf[k], iv.hi_inf[k])


def unrolled_whitened_log_density(joint, raw, intervals, weight, corr):
    """The latents' log-density, latent by latent (see the module docstring)."""
    ref_interval, new_interval, between = intervals
    latent = joint.latent
    chol = [
        pt.linalg.cholesky(corr[cells][:, cells]) for cells in (np.flatnonzero(latent[0]), np.flatnonzero(latent[1]))
    ]
    eps: list[list] = [[], []]
    z_ref_of_cell: dict[int, object] = {}
    terms = []
    for pos, (a, k) in enumerate(joint.latent_order):
        i = len(eps[a])
        offset = pt.dot(chol[a][i, :i], pt.stack(eps[a])) if i else pt.constant(0.0)
        if a == 0:
            iv = cell_interval(ref_interval, k)
        else:
            z_ref = z_ref_of_cell.get(k, 0.0)
            iv = cell_interval(new_interval, k).intersect(
                cell_interval(between, k).shifted(weight[0] * z_ref).scaled(1 / weight[1])
            )
        e, log_jac, log_ok = interval_transform(raw[pos], iv.shifted(-offset).scaled(1 / chol[a][i, i]))
        eps[a].append(e)
        if a == 0:
            z_ref_of_cell[k] = chol[0][i, i] * e + offset
        terms.append(log_jac + log_ok - 0.5 * e**2)
    return pt.sum(pt.stack(terms)) - 0.5 * len(terms) * np.log(2 * np.pi)
