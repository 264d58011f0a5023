"""The numba implementations of :class:`~bayes_stenosis.model.kernels.ghk.GHKLogDensity` (``ghk_core``
jitted) and :class:`~bayes_stenosis.model.kernels.ghk.JointStatementLogDensity` (``joint_core``).

Importing this module registers them with PyTensor's numba backend. The jitted code holds no function
pointers, so numba can cache the code that calls it (the disk cache of compiled models); its cache key
is the operation's properties, ``IMPLEMENTATION`` / ``JOINT_IMPLEMENTATION`` among them.
"""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from bayes_stenosis.model.kernels.ghk import GHKLogDensity, JointStatementLogDensity
from bayes_stenosis.model.kernels.ghk_core import ghk_log_density
from bayes_stenosis.model.kernels.joint_core import term_log_density


@register_funcify_default_op_cache_key(GHKLogDensity)
def numba_funcify_ghk_log_density(op, node, **kwargs):
    @numba_basic.numba_njit
    def ghk(raw, chol0, chol1, lo, hi, lo_inf, hi_inf, weight, arm_of, cell_of, index_of):
        value, g_raw, g_chol0, g_chol1, g_lo, g_hi, g_weight = ghk_log_density(
            raw, chol0, chol1, lo, hi, lo_inf, hi_inf, weight, arm_of, cell_of, index_of
        )
        return np.array(value), g_raw, g_chol0, g_chol1, g_lo, g_hi, g_weight

    return ghk, 1


@register_funcify_default_op_cache_key(JointStatementLogDensity)
def numba_funcify_joint_statement_log_density(op, node, **kwargs):
    @numba_basic.numba_njit
    def joint(raw, change, sqrt_n, ratio, r_time, r_out, sd_values, pooling, crit, weight, codes, within_t, *layout):
        out = term_log_density(
            raw, change, sqrt_n, ratio, r_time, r_out, sd_values, pooling, crit, weight, codes, within_t, *layout
        )
        return np.array(out[0]), out[1], out[2], out[3], out[4], out[5], out[6], out[7], out[8], out[9], out[10]

    return joint, 1
