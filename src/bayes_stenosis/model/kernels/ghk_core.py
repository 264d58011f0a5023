r"""The GHK recursion of the joint statement term with its reverse-mode gradient, in scalar loops.

Plain Python on floats and arrays, each function marked ``register_jitable``: called from Python it is
the Python implementation of :class:`~bayes_stenosis.model.kernels.ghk.GHKLogDensity`; called from jitted
code it is compiled (:mod:`~bayes_stenosis.model.kernels.ghk_numba`), so both backends compute the same
maths.

The maths is the elementwise graph the op replaced (the recursion of
:func:`~bayes_stenosis.model.terms.threshold_joint.whitened_log_density` unrolled with one
:func:`~bayes_stenosis.model.terms.intervals.interval_transform` per latent; kept in
``tests/model/ghk_reference.py``), operation for operation (the same softplus and sigmoid forms, the same
branches), so values agree with it to rounding; the gradient routes through the same branches as
PyTensor's (a ``maximum`` or ``minimum`` tie passes the gradient to both sides, a branch not taken gets
zero).
"""

from __future__ import annotations

import math

import numpy as np
from numba.extending import register_jitable


@register_jitable
def softplus(x):
    """:math:`\\log(1 + e^x)` in PyTensor's piecewise form (exact to double precision in both tails)."""
    if x < -37.0:
        return math.exp(x)
    if x < 18.0:
        return math.log1p(math.exp(x))
    if x < 33.3:
        return x + math.exp(-x)
    return x


@register_jitable
def sigmoid(x):
    """:math:`1 / (1 + e^{-x})`, as PyTensor computes it."""
    return 1.0 / (1.0 + math.exp(-x))


@register_jitable
def transform(raw, lo, hi, lo_inf, hi_inf, out):
    r"""``interval_transform`` of one value with its partial derivatives.

    Writes ``out[:] = (eps, log_jac, log_ok, deps/draw, deps/dlo, deps/dhi, dlj/draw, dlj/dlo, dlj/dhi)``
    (a derivative through an infinite end is 0).
    """
    for j in range(9):
        out[j] = 0.0
    if not lo_inf and not hi_inf:
        width = hi - lo
        valid = width > 0
        safe = width if valid else 1.0
        spread = math.sqrt(1.0 + (safe / 4.0) ** 2)
        x = (raw - (lo + hi) / 2.0) / spread
        s_pos, s_neg = sigmoid(x), sigmoid(-x)
        de_dx = safe * s_pos * s_neg
        dj_dx = s_neg - s_pos
        if x < 0:
            out[0] = lo + safe * s_pos
            de_dlo_direct, de_dhi_direct, de_dw = 1.0, 0.0, s_pos
        else:
            out[0] = hi - safe * s_neg
            de_dlo_direct, de_dhi_direct, de_dw = 0.0, 1.0, -s_neg
        out[1] = math.log(safe) - softplus(-x) - softplus(x) - math.log(spread)
        out[2] = 0.0 if valid else -math.inf
        # x = (raw - (lo + hi) / 2) / spread(width): through the midpoint and, if valid, the width
        dx_dmid = -1.0 / spread
        dx_dw = 0.0
        dj_dw = 0.0
        if valid:
            dspread_dw = safe / 16.0 / spread
            dx_dw = -x / spread * dspread_dw
            dj_dw = 1.0 / safe - dspread_dw / spread
        else:
            de_dw = 0.0
        de_dw_total = de_dw + de_dx * dx_dw
        dj_dw_total = dj_dw + dj_dx * dx_dw
        out[3] = de_dx / spread
        out[4] = de_dlo_direct + de_dx * dx_dmid * 0.5 - de_dw_total
        out[5] = de_dhi_direct + de_dx * dx_dmid * 0.5 + de_dw_total
        out[6] = dj_dx / spread
        out[7] = dj_dx * dx_dmid * 0.5 - dj_dw_total
        out[8] = dj_dx * dx_dmid * 0.5 + dj_dw_total
    elif not lo_inf:  # [lo, inf): lo + softplus(raw - lo)
        u = raw - lo
        out[0] = lo + softplus(u)
        out[1] = -softplus(-u)
        s_pos, s_neg = sigmoid(u), sigmoid(-u)
        out[3] = s_pos
        out[4] = 1.0 - s_pos
        out[6] = s_neg
        out[7] = -s_neg
    elif not hi_inf:  # (-inf, hi]: hi - softplus(hi - raw)
        v = hi - raw
        out[0] = hi - softplus(v)
        out[1] = -softplus(-v)
        s_pos, s_neg = sigmoid(v), sigmoid(-v)
        out[3] = s_pos
        out[5] = 1.0 - s_pos
        out[6] = -s_neg
        out[8] = s_neg
    else:
        out[0] = raw
        out[3] = 1.0


@register_jitable
def ghk_log_density(raw, chol0, chol1, lo, hi, lo_inf, hi_inf, weight, arm_of, cell_of, index_of):
    r"""The latents' log-density (without :math:`-\frac{L}{2}\log 2\pi`) and its gradient.

    Parameters
    ----------
    raw
        Unconstrained latents, (L,), in sampling order (``JointDesign.latent_order``).
    chol0, chol1
        Cholesky factors of the reference and new arm's latent cells' correlation.
    lo, hi, lo_inf, hi_inf
        (3, C): the ``ref``, ``new`` and ``between`` intervals of ``cell_error_intervals``.
    weight
        :math:`(w_{ref}, w_{new})`.
    arm_of, cell_of, index_of
        (L,): each latent's arm, cell and place among its arm's latent cells.

    Returns
    -------
    tuple
        ``(logp, d/draw, d/dchol0, d/dchol1, d/dlo, d/dhi, d/dweight)``.
    """
    total, parts, ends, offsets, side, z_ref, _ = forward_pass(
        raw, chol0, chol1, lo, hi, lo_inf, hi_inf, weight, arm_of, cell_of, index_of
    )
    grads = reverse_pass(chol0, chol1, lo, hi, weight, arm_of, cell_of, index_of, parts, ends, offsets, side, z_ref)
    return (total, *grads)


@register_jitable
def forward_pass(raw, chol0, chol1, lo, hi, lo_inf, hi_inf, weight, arm_of, cell_of, index_of):
    """The value and what the reverse pass needs; ``widths``: each latent's interval width after its
    Cholesky scaling (inf with an infinite end; a width w amplifies rounding in the gradient by 1/w)."""
    n = raw.shape[0]
    n_cells = lo.shape[1]
    w0, w1 = weight[0], weight[1]
    inv_w1 = 1.0 / w1
    parts = np.zeros((n, 9))
    ends = np.zeros((n, 2))  # the latent's interval before the shift and scale by its Cholesky row
    offsets = np.zeros(n)
    # where each end of a new-arm interval came from: 0 the new arm's own, 1 the between-arm one, 2 both (a tie)
    side = np.zeros((n, 2), dtype=np.int64)
    z_ref = np.zeros(n_cells)
    has_ref = np.zeros(n_cells, dtype=np.bool_)
    arm_eps = np.zeros((2, n))
    widths = np.full(n, np.inf)
    total = 0.0
    for pos in range(n):
        a, k, i = arm_of[pos], cell_of[pos], index_of[pos]
        chol = chol0 if a == 0 else chol1
        offset = 0.0
        for j in range(i):
            offset += chol[i, j] * arm_eps[a, j]
        offsets[pos] = offset
        if a == 0:
            v_lo, v_hi, v_lo_inf, v_hi_inf = lo[0, k], hi[0, k], lo_inf[0, k], hi_inf[0, k]
        else:
            zr = z_ref[k] if has_ref[k] else 0.0
            b_lo = (lo[2, k] + w0 * zr) * inv_w1
            b_hi = (hi[2, k] + w0 * zr) * inv_w1
            v_lo, side[pos, 0] = intersect_end(lo[1, k], lo_inf[1, k], b_lo, lo_inf[2, k], True)
            v_hi, side[pos, 1] = intersect_end(hi[1, k], hi_inf[1, k], b_hi, hi_inf[2, k], False)
            v_lo_inf = lo_inf[1, k] and lo_inf[2, k]
            v_hi_inf = hi_inf[1, k] and hi_inf[2, k]
        ends[pos, 0], ends[pos, 1] = v_lo, v_hi
        inv_d = 1.0 / chol[i, i]
        lo_t, hi_t = (v_lo + -offset) * inv_d, (v_hi + -offset) * inv_d
        transform(raw[pos], lo_t, hi_t, v_lo_inf, v_hi_inf, parts[pos])
        if not v_lo_inf and not v_hi_inf:
            widths[pos] = hi_t - lo_t
        e = parts[pos, 0]
        arm_eps[a, i] = e
        if a == 0:
            z_ref[k] = chol[i, i] * e + offset
            has_ref[k] = True
        total += parts[pos, 1] + parts[pos, 2] - 0.5 * e**2
    return total, parts, ends, offsets, side, z_ref, widths


@register_jitable
def intersect_end(own, own_inf, other, other_inf, lower):
    """One end of ``own`` intersected with ``other`` (``Interval.intersect``) and where it came from (see
    ``side`` above)."""
    if own_inf:
        return other, 1
    if other_inf:
        return own, 0
    if own == other:
        return own, 2
    if (own > other) == lower:
        return own, 0
    return other, 1


@register_jitable
def reverse_pass(chol0, chol1, lo, hi, weight, arm_of, cell_of, index_of, parts, ends, offsets, side, z_ref):
    """The gradient of :func:`ghk_log_density`'s value, latents in reverse order (reverse-mode)."""
    n = parts.shape[0]
    n_cells = lo.shape[1]
    w0, w1 = weight[0], weight[1]
    inv_w1 = 1.0 / w1
    g_raw = np.zeros(n)
    g_chol = (np.zeros(chol0.shape), np.zeros(chol1.shape))
    g_lo = np.zeros(lo.shape)
    g_hi = np.zeros(hi.shape)
    g_z_ref = np.zeros(n_cells)
    has_ref = np.zeros(n_cells, dtype=np.bool_)
    for pos in range(n):
        if arm_of[pos] == 0:
            has_ref[cell_of[pos]] = True
    g_eps = np.zeros((2, n))  # adjoint of each arm's eps from the later offsets
    arm_eps = np.zeros((2, n))
    for pos in range(n):
        arm_eps[arm_of[pos], index_of[pos]] = parts[pos, 0]
    g_w0 = 0.0
    g_inv_w1 = 0.0
    for pos in range(n - 1, -1, -1):
        a, k, i = arm_of[pos], cell_of[pos], index_of[pos]
        chol = chol0 if a == 0 else chol1
        g_c = g_chol[a]
        d = chol[i, i]
        inv_d = 1.0 / d
        e = parts[pos, 0]
        g_e = -e + g_eps[a, i]
        g_off = 0.0
        g_d = 0.0
        if a == 0:  # z_ref = d e + offset
            g_e += g_z_ref[k] * d
            g_d += g_z_ref[k] * e
            g_off += g_z_ref[k]
        g_raw[pos] = parts[pos, 6] + g_e * parts[pos, 3]
        g_lo_t = parts[pos, 7] + g_e * parts[pos, 4]
        g_hi_t = parts[pos, 8] + g_e * parts[pos, 5]
        # (end - offset) / d
        g_v_lo = g_lo_t * inv_d
        g_v_hi = g_hi_t * inv_d
        g_off -= g_v_lo + g_v_hi
        g_inv_d = g_lo_t * (ends[pos, 0] + -offsets[pos]) + g_hi_t * (ends[pos, 1] + -offsets[pos])
        g_d -= g_inv_d * inv_d * inv_d
        g_c[i, i] += g_d
        for j in range(i):
            g_c[i, j] += g_off * arm_eps[a, j]
            g_eps[a, j] += g_off * chol[i, j]
        if a == 0:
            g_lo[0, k] += g_v_lo
            g_hi[0, k] += g_v_hi
            continue
        g_b_lo = 0.0
        g_b_hi = 0.0
        if side[pos, 0] != 1:
            g_lo[1, k] += g_v_lo
        if side[pos, 0] != 0:
            g_b_lo = g_v_lo
        if side[pos, 1] != 1:
            g_hi[1, k] += g_v_hi
        if side[pos, 1] != 0:
            g_b_hi = g_v_hi
        # b = (between end + w0 z_ref) / w1
        zr = z_ref[k] if has_ref[k] else 0.0
        g_lo[2, k] += g_b_lo * inv_w1
        g_hi[2, k] += g_b_hi * inv_w1
        g_inv_w1 += g_b_lo * (lo[2, k] + w0 * zr) + g_b_hi * (hi[2, k] + w0 * zr)
        g_w0 += (g_b_lo + g_b_hi) * inv_w1 * zr
        if has_ref[k]:
            g_z_ref[k] += (g_b_lo + g_b_hi) * inv_w1 * w0
    g_weight = np.zeros(2)
    g_weight[0] = g_w0
    g_weight[1] = -g_inv_w1 * inv_w1 * inv_w1
    return g_raw, g_chol[0], g_chol[1], g_lo, g_hi, g_weight
