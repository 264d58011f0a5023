r"""The whole joint statement term in scalar loops: the cells' noncentralities, correlation and SD ratios
(:func:`term_log_density`), their intervals, the Cholesky factors and the GHK recursion
(:func:`joint_log_density`), with the reverse-mode gradient of each.

The GHK recursion (:mod:`~bayes_stenosis.model.kernels.ghk_core`) was one operation with the intervals and
the two Cholesky factors as vectorised graph around it; on the flagship that graph (about 150 nodes with its
gradient, two LAPACK factorisations and their gradients) cost 8x the recursion itself. Here it is the same
maths in loops: :func:`cell_intervals` is ``threshold_joint.cell_error_intervals`` operation for operation
(the same products, sums and branches, a ``maximum`` / ``minimum`` tie passing the gradient to its first
argument as PyTensor's does); :func:`cholesky_rows` is the Cholesky-Banachiewicz factorisation, which LAPACK
matches to rounding, and :func:`cholesky_reverse` its reverse sweep, whose gradient is the lower triangle
PyTensor's ``Cholesky`` returns (a symmetric matrix read through its lower triangle).

Plain Python marked ``register_jitable``, as ``ghk_core``: compiled into the numba code that calls it
(nutpie's log density), and jitted on its own (:func:`jitted_term`, cached on disk) as the operation's Python
implementation: PyTensor's other backends call that once per evaluation, and a vectorised graph (the
integration tests) once per element, where the loops in Python took minutes.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba.extending import register_jitable

from bayes_stenosis.model.kernels.ghk_core import forward_pass, reverse_pass

#: Event kind codes (``threshold_joint.EVENT_KIND_CODES`` and ``NO_STATEMENT``).
INSIDE, BELOW, ABOVE, NONE = 0, 1, 2, 3


@register_jitable
def event_interval(code, bound):
    r"""``threshold_joint.event_interval`` of one statement: ``(lo, hi, lo_inf, hi_inf, dlo/dbound,
    dhi/dbound)`` with ``bound`` :math:`= cS`; an infinite end is 0 with a zero derivative."""
    lo_inf = code == BELOW or code == NONE  # noqa: SIM109 - scalar comparisons, as numba compiles them best
    hi_inf = code == ABOVE or code == NONE  # noqa: SIM109
    lo, dlo = 0.0, 0.0
    hi, dhi = 0.0, 0.0
    if not lo_inf:
        lo, dlo = (-bound, -1.0) if code == INSIDE else (bound, 1.0)
    if not hi_inf:
        hi, dhi = (bound, 1.0) if code == INSIDE else (-bound, -1.0)
    return lo, hi, lo_inf, hi_inf, dlo, dhi


@register_jitable
def cell_intervals(lam, scale, s_between, crit, codes, within_t, weight):
    r"""Per cell, the intervals of ``(z_ref, z_new, w_new z_new - w_ref z_ref)`` (``cell_error_intervals``).

    ``lam``, ``scale``: (2, C); ``s_between``: (C,); ``crit``, ``codes``: (3, C), rows within the reference
    arm, within the new arm, between arms (crit 1 and code ``NONE`` where a cell has no such statement);
    ``within_t``: (2, C), a within-arm statement is a paired t (its bound scales with :math:`S_{a,k}`).

    Returns ``(lo, hi, lo_inf, hi_inf, saved)``, the ends (3, C) and what :func:`cell_intervals_reverse` needs.
    """
    n_cells = lam.shape[1]
    w0, w1 = weight[0], weight[1]
    inv_w0 = 1.0 / w0
    lo = np.zeros((3, n_cells))
    hi = np.zeros((3, n_cells))
    lo_inf = np.zeros((3, n_cells), dtype=np.bool_)
    hi_inf = np.zeros((3, n_cells), dtype=np.bool_)
    # per row and cell: the scale of the bound, d(end)/d(bound) of each end; per cell: the projection's ends
    # before the intersection, and which side the reference interval's ends came from (0 within, 1 projection)
    used_scale = np.ones((3, n_cells))
    d_lo = np.zeros((3, n_cells))
    d_hi = np.zeros((3, n_cells))
    proj = np.zeros((2, n_cells))  # the ends of (w_new I_new - J), before the 1 / w_ref scaling
    ref_side = np.zeros((2, n_cells), dtype=np.int64)
    for k in range(n_cells):
        for r in range(3):
            if r < 2:
                sc = scale[r, k] if within_t[r, k] else 1.0
                shift = lam[r, k]
            else:
                sc = s_between[k]
                shift = w1 * lam[1, k] - w0 * lam[0, k]
            used_scale[r, k] = sc
            e_lo, e_hi, e_lo_inf, e_hi_inf, d_lo[r, k], d_hi[r, k] = event_interval(codes[r, k], crit[r, k] * sc)
            lo[r, k], hi[r, k] = e_lo + -shift, e_hi + -shift
            lo_inf[r, k], hi_inf[r, k] = e_lo_inf, e_hi_inf
        # the projection (w_new I_new - J) / w_ref; the row of the reference arm is its intersection with I_ref
        m_lo, m_hi = lo[1, k] * w1 - hi[2, k], hi[1, k] * w1 - lo[2, k]
        c_lo, c_hi = m_lo * inv_w0, m_hi * inv_w0
        c_lo_inf, c_hi_inf = lo_inf[1, k] or hi_inf[2, k], hi_inf[1, k] or lo_inf[2, k]
        proj[0, k], proj[1, k] = m_lo, m_hi
        # PyTensor's maximum / minimum pass a tie's gradient to their first argument, the reference arm's end
        if lo_inf[0, k] or (not c_lo_inf and c_lo > lo[0, k]):
            lo[0, k], ref_side[0, k] = c_lo, 1
        if hi_inf[0, k] or (not c_hi_inf and c_hi < hi[0, k]):
            hi[0, k], ref_side[1, k] = c_hi, 1
        lo_inf[0, k] = lo_inf[0, k] and c_lo_inf
        hi_inf[0, k] = hi_inf[0, k] and c_hi_inf
    return lo, hi, lo_inf, hi_inf, (used_scale, d_lo, d_hi, proj, ref_side)


@register_jitable
def cell_intervals_reverse(g_lo, g_hi, lam, crit, within_t, weight, lo, hi, saved):
    """The gradient of :func:`cell_intervals` (whose ends were ``lo``, ``hi``) given the ends' adjoints
    ``g_lo``, ``g_hi`` (3, C): ``(d/dlam, d/dscale, d/ds_between, d/dcrit, d/dweight)``."""
    used_scale, d_lo, d_hi, proj, ref_side = saved
    n_cells = lam.shape[1]
    w0, w1 = weight[0], weight[1]
    inv_w0 = 1.0 / w0
    g_lam = np.zeros((2, n_cells))
    g_scale = np.zeros((2, n_cells))
    g_s_between = np.zeros(n_cells)
    g_crit = np.zeros((3, n_cells))
    g_w0 = 0.0
    g_w1 = 0.0
    g_inv_w0 = 0.0
    g_row_lo = np.zeros(3)
    g_row_hi = np.zeros(3)
    for k in range(n_cells):
        # the reference row's ends: its own or the projection's
        g_c_lo = g_lo[0, k] if ref_side[0, k] == 1 else 0.0
        g_c_hi = g_hi[0, k] if ref_side[1, k] == 1 else 0.0
        g_row_lo[0] = g_lo[0, k] - g_c_lo
        g_row_hi[0] = g_hi[0, k] - g_c_hi
        # the projection c = m / w_ref, m_lo = w_new lo_new - hi_between, m_hi = w_new hi_new - lo_between
        g_inv_w0 += g_c_lo * proj[0, k] + g_c_hi * proj[1, k]
        g_m_lo, g_m_hi = g_c_lo * inv_w0, g_c_hi * inv_w0
        g_w1 += g_m_lo * lo[1, k] + g_m_hi * hi[1, k]
        g_row_lo[1] = g_lo[1, k] + g_m_lo * w1
        g_row_hi[1] = g_hi[1, k] + g_m_hi * w1
        g_row_lo[2] = g_lo[2, k] - g_m_hi
        g_row_hi[2] = g_hi[2, k] - g_m_lo
        for r in range(3):
            g_shift = -(g_row_lo[r] + g_row_hi[r])
            if r < 2:
                g_lam[r, k] += g_shift
            else:  # shift = w_new lam_new - w_ref lam_ref
                g_lam[1, k] += g_shift * w1
                g_lam[0, k] -= g_shift * w0
                g_w1 += g_shift * lam[1, k]
                g_w0 -= g_shift * lam[0, k]
            g_bound = g_row_lo[r] * d_lo[r, k] + g_row_hi[r] * d_hi[r, k]
            g_crit[r, k] += g_bound * used_scale[r, k]
            g_sc = g_bound * crit[r, k]
            if r == 2:
                g_s_between[k] += g_sc
            elif within_t[r, k]:
                g_scale[r, k] += g_sc
    g_w0 -= g_inv_w0 * inv_w0 * inv_w0
    g_weight = np.zeros(2)
    g_weight[0], g_weight[1] = g_w0, g_w1
    return g_lam, g_scale, g_s_between, g_crit, g_weight


@register_jitable
def cholesky_rows(corr, cells, chol):
    """``chol`` := the lower Cholesky factor of ``corr[cells][:, cells]``, read through its lower triangle;
    False (and ``chol`` incomplete) when the matrix is not positive definite."""
    n = cells.shape[0]
    for j in range(n):
        s = corr[cells[j], cells[j]]
        for k in range(j):
            s -= chol[j, k] * chol[j, k]
        if not s > 0.0:
            return False
        d = math.sqrt(s)
        chol[j, j] = d
        for i in range(j + 1, n):
            t = corr[cells[i], cells[j]]
            for k in range(j):
                t -= chol[i, k] * chol[j, k]
            chol[i, j] = t / d
    return True


@register_jitable
def cholesky_reverse(chol, g_chol, cells, g_corr):
    """Add to ``g_corr`` the gradient of :func:`cholesky_rows` given the factor's adjoint ``g_chol`` (used up:
    it is overwritten); the gradient lands on the lower triangle, as PyTensor's ``Cholesky`` gradient."""
    n = cells.shape[0]
    for j in range(n - 1, -1, -1):
        d = chol[j, j]
        for i in range(n - 1, j, -1):
            g_t = g_chol[i, j] / d  # chol[i, j] = t / d
            g_chol[j, j] -= g_chol[i, j] * chol[i, j] / d
            g_corr[cells[i], cells[j]] += g_t
            for k in range(j):
                g_chol[i, k] -= g_t * chol[j, k]
                g_chol[j, k] -= g_t * chol[i, k]
        g_s = g_chol[j, j] / (2.0 * d)  # d = sqrt(s)
        g_corr[cells[j], cells[j]] += g_s
        for k in range(j):
            g_chol[j, k] -= 2.0 * g_s * chol[j, k]


@register_jitable
def joint_log_density(
    raw, lam, scale, s_between, corr, crit, weight, codes, within_t, cells0, cells1, arm_of, cell_of, index_of
):
    r"""The joint statement term's log-density (without :math:`-\frac{L}{2}\log 2\pi`) and its gradient.

    Parameters
    ----------
    raw
        Unconstrained latents, (L,), in sampling order (``JointDesign.latent_order``).
    lam, scale
        :math:`\lambda_{a,k}` and :math:`S_{a,k}`, (2, C).
    s_between
        :math:`S_{b,k}`, (C,).
    corr
        :math:`R` over the cells, (C, C).
    crit, codes
        (3, C): critical value and event kind of each cell's statement within the reference arm, within the
        new arm and between arms (1 and ``NONE`` where there is none).
    weight
        :math:`(w_{ref}, w_{new})`.
    within_t
        (2, C): the within-arm statement is a paired t.
    cells0, cells1
        Each arm's latent cells, in order.
    arm_of, cell_of, index_of
        (L,): each latent's arm, cell and place among its arm's latent cells.

    Returns
    -------
    tuple
        ``(logp, d/draw, d/dlam, d/dscale, d/ds_between, d/dcorr, d/dcrit, d/dweight)``; ``logp`` is
        :math:`-\infty` (with a zero gradient) where an arm's correlation is not positive definite.
    """
    n_cells = lam.shape[1]
    chol0 = np.zeros((cells0.shape[0], cells0.shape[0]))
    chol1 = np.zeros((cells1.shape[0], cells1.shape[0]))
    g_corr = np.zeros((n_cells, n_cells))
    if not (cholesky_rows(corr, cells0, chol0) and cholesky_rows(corr, cells1, chol1)):
        zero_l = np.zeros((2, n_cells))
        return (
            -math.inf,
            np.zeros(raw.shape[0]),
            zero_l,
            zero_l.copy(),
            np.zeros(n_cells),
            g_corr,
            np.zeros((3, n_cells)),
            np.zeros(2),
        )
    lo, hi, lo_inf, hi_inf, saved = cell_intervals(lam, scale, s_between, crit, codes, within_t, weight)
    total, parts, ends, offsets, side, z_ref, _ = forward_pass(
        raw, chol0, chol1, lo, hi, lo_inf, hi_inf, weight, arm_of, cell_of, index_of
    )
    g_raw, g_chol0, g_chol1, g_lo, g_hi, g_weight_ghk = reverse_pass(
        chol0, chol1, lo, hi, weight, arm_of, cell_of, index_of, parts, ends, offsets, side, z_ref
    )
    cholesky_reverse(chol0, g_chol0, cells0, g_corr)
    cholesky_reverse(chol1, g_chol1, cells1, g_corr)
    g_lam, g_scale, g_s_between, g_crit, g_weight = cell_intervals_reverse(
        g_lo, g_hi, lam, crit, within_t, weight, lo, hi, saved
    )
    g_weight += g_weight_ghk
    return total, g_raw, g_lam, g_scale, g_s_between, g_corr, g_crit, g_weight


@register_jitable
def term_log_density(
    raw,
    change,
    sqrt_n,
    change_sd_ratio,
    r_time,
    r_out,
    sd_values,
    pooling,
    crit,
    weight,
    codes,
    within_t,
    t_idx,
    o_idx,
    sd_arm,
    sd_cell,
    cells0,
    cells1,
    arm_of,
    cell_of,
    index_of,
):
    r"""The joint statement term from the model's own quantities, and its gradient with respect to them.

    What ``threshold_joint.add_joint_statement_term`` computes around :func:`joint_log_density`, in the same
    loops: :math:`\lambda_{a,k} = \theta_{a,t_k,o_k}\sqrt{n_a}/\sigma_{o_k}`, :math:`R_{k,l} =
    R_{time}[t_k, t_l] R_{out}[o_k, o_l]`, :math:`S_{a,k}` (``sd_values`` at ``(sd_arm, sd_cell)``, 1
    elsewhere) and :math:`S_{b,k} = \sqrt{\text{pooling}_k \cdot (S_{ref,k}^2, S_{new,k}^2, 1)}`.

    Returns
    -------
    tuple
        ``(logp, d/draw, d/dchange, d/dsqrt_n, d/dchange_sd_ratio, d/dr_time, d/dr_out, d/dsd_values,
        d/dpooling, d/dcrit, d/dweight)``.
    """
    n_cells = t_idx.shape[0]
    lam = np.empty((2, n_cells))
    for a in range(2):
        for k in range(n_cells):
            lam[a, k] = change[a, t_idx[k], o_idx[k]] * sqrt_n[a] / change_sd_ratio[o_idx[k]]
    corr = np.empty((n_cells, n_cells))
    for k in range(n_cells):
        for m in range(n_cells):
            corr[k, m] = r_time[t_idx[k], t_idx[m]] * r_out[o_idx[k], o_idx[m]]
    scale = np.ones((2, n_cells))
    for j in range(sd_values.shape[0]):
        scale[sd_arm[j], sd_cell[j]] = sd_values[j]
    s_between = np.empty(n_cells)
    for k in range(n_cells):
        s_between[k] = math.sqrt(pooling[k, 0] * scale[0, k] ** 2 + pooling[k, 1] * scale[1, k] ** 2 + pooling[k, 2])
    total, g_raw, g_lam, g_scale, g_s_between, g_corr, g_crit, g_weight = joint_log_density(
        raw, lam, scale, s_between, corr, crit, weight, codes, within_t, cells0, cells1, arm_of, cell_of, index_of
    )
    g_change = np.zeros(change.shape)
    g_sqrt_n = np.zeros(2)
    g_ratio = np.zeros(change_sd_ratio.shape[0])
    g_r_time = np.zeros(r_time.shape)
    g_r_out = np.zeros(r_out.shape)
    g_sd = np.zeros(sd_values.shape[0])
    g_pooling = np.zeros(pooling.shape)
    for k in range(n_cells):
        if g_s_between[k] != 0.0:  # S_b = sqrt(x): dS_b/dx = 1 / (2 S_b)
            g_x = g_s_between[k] / (2.0 * s_between[k])
            g_pooling[k, 0] += g_x * scale[0, k] ** 2
            g_pooling[k, 1] += g_x * scale[1, k] ** 2
            g_pooling[k, 2] += g_x
            g_scale[0, k] += g_x * pooling[k, 0] * 2.0 * scale[0, k]
            g_scale[1, k] += g_x * pooling[k, 1] * 2.0 * scale[1, k]
    for j in range(sd_values.shape[0]):
        g_sd[j] = g_scale[sd_arm[j], sd_cell[j]]
    for a in range(2):
        for k in range(n_cells):
            t, o = t_idx[k], o_idx[k]
            g = g_lam[a, k]
            g_change[a, t, o] += g * sqrt_n[a] / change_sd_ratio[o]
            g_sqrt_n[a] += g * change[a, t, o] / change_sd_ratio[o]
            g_ratio[o] -= g * lam[a, k] / change_sd_ratio[o]
    for k in range(n_cells):
        for m in range(n_cells):
            g = g_corr[k, m]
            if g != 0.0:
                g_r_time[t_idx[k], t_idx[m]] += g * r_out[o_idx[k], o_idx[m]]
                g_r_out[o_idx[k], o_idx[m]] += g * r_time[t_idx[k], t_idx[m]]
    return total, g_raw, g_change, g_sqrt_n, g_ratio, g_r_time, g_r_out, g_sd, g_pooling, g_crit, g_weight


@functools.cache
def jitted_term():
    """:func:`term_log_density` compiled by numba on its own (cached on disk: a few seconds once)."""
    import numba

    return numba.njit(cache=True)(term_log_density)
