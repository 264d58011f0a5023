r"""Intervals of the real line in a PyMC graph, and transforms of an unconstrained value into one.

Used by the joint threshold term (:mod:`~bayes_stenosis.model.terms.threshold_joint`): the statements of a
cell bound each latent error to an interval whose ends depend on the parameters (and may be infinite, or,
with event kinds as data, infinite or not by data). Infinite ends are a boolean mask beside a finite
stand-in value, so neither the graph nor its gradient ever holds an inf or a NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt


@dataclass
class Interval:
    """An interval of the real line: ends ``lo``, ``hi`` (tensors) and masks ``lo_inf`` / ``hi_inf``
    (boolean tensors) for an infinite end, whose value is then a finite placeholder (no inf, no NaN in
    the graph or its gradient)."""

    lo: pt.TensorVariable
    hi: pt.TensorVariable
    lo_inf: pt.TensorVariable
    hi_inf: pt.TensorVariable

    def scaled(self, w) -> Interval:
        """:math:`w I` for :math:`w > 0`."""
        return Interval(self.lo * w, self.hi * w, self.lo_inf, self.hi_inf)

    def shifted(self, x) -> Interval:
        """:math:`I + x`."""
        return Interval(self.lo + x, self.hi + x, self.lo_inf, self.hi_inf)

    def minus(self, other: Interval) -> Interval:
        """:math:`\\{a - b: a \\in I, b \\in other\\}`."""
        return Interval(
            self.lo - other.hi,
            self.hi - other.lo,
            pt.or_(self.lo_inf, other.hi_inf),
            pt.or_(self.hi_inf, other.lo_inf),
        )

    def intersect(self, other: Interval) -> Interval:
        """:math:`I \\cap other` (empty when ``hi <= lo``; :func:`interval_transform` refuses it)."""
        lo = pt.switch(self.lo_inf, other.lo, pt.switch(other.lo_inf, self.lo, pt.maximum(self.lo, other.lo)))
        hi = pt.switch(self.hi_inf, other.hi, pt.switch(other.hi_inf, self.hi, pt.minimum(self.hi, other.hi)))
        return Interval(lo, hi, pt.and_(self.lo_inf, other.lo_inf), pt.and_(self.hi_inf, other.hi_inf))


def interval_transform(raw, iv: Interval):
    r"""A value :math:`\epsilon` in ``iv`` from an unconstrained ``raw``: ``(eps, log|deps/draw|, log_ok)``.

    The latents are standard normal before the statements cut them, so each transform is close to the
    identity where its interval leaves them free: one finite end :math:`b` above, a soft clip
    :math:`b - \mathrm{softplus}(b - raw)` (log-Jacobian :math:`-\mathrm{softplus}(raw - b)`; below,
    mirrored); both ends, :math:`lo + W\sigma(x)` with :math:`W = hi - lo`,
    :math:`x = (raw - m)/s`, :math:`m` the midpoint and :math:`s = \sqrt{1 + (W/4)^2}` (slope ~1 at
    the centre of a wide interval, scale-free in a narrow one), computed from the nearer end; no end:
    the identity. ``log_ok`` is 0, or :math:`-\infty` for an empty interval; every branch is evaluated on
    finite stand-ins, so the branches not taken give zero, not NaN, gradients.
    """
    two = pt.and_(pt.invert(iv.lo_inf), pt.invert(iv.hi_inf))
    lower_only = pt.and_(pt.invert(iv.lo_inf), iv.hi_inf)
    upper_only = pt.and_(iv.lo_inf, pt.invert(iv.hi_inf))
    width = iv.hi - iv.lo
    valid = pt.or_(pt.invert(two), width > 0)
    safe_width = pt.switch(pt.and_(two, width > 0), width, 1.0)
    spread = pt.sqrt(1 + (safe_width / 4) ** 2)
    x = pt.switch(two, (raw - (iv.lo + iv.hi) / 2) / spread, 0.0)
    eps_two = pt.switch(x < 0, iv.lo + safe_width * pt.sigmoid(x), iv.hi - safe_width * pt.sigmoid(-x))
    jac_two = pt.log(safe_width) - pt.softplus(-x) - pt.softplus(x) - pt.log(spread)
    below_hi = pt.switch(upper_only, iv.hi - raw, 0.0)
    above_lo = pt.switch(lower_only, raw - iv.lo, 0.0)
    eps = pt.switch(
        two,
        eps_two,
        pt.switch(lower_only, iv.lo + pt.softplus(above_lo), pt.switch(upper_only, iv.hi - pt.softplus(below_hi), raw)),
    )
    log_jac = pt.switch(
        two,
        jac_two,
        pt.switch(lower_only, -pt.softplus(-above_lo), pt.switch(upper_only, -pt.softplus(-below_hi), 0.0)),
    )
    return eps, log_jac, pt.switch(valid, 0.0, -np.inf)
