"""Argument checks shared by the conversions: a bad number raises ``ValueError`` naming it.

A silent NaN from a conversion would travel into a model as a plausible-looking standard error,
so every conversion checks its inputs with these before computing.
"""

from __future__ import annotations

import math

__all__ = ["require_finite", "require_positive"]


def require_finite(name: str, value: float) -> None:
    # math.isfinite also rejects NaN, which comparisons alone would let through.
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number (got {value!r})")


def require_positive(name: str, value: float) -> None:
    require_finite(name, value)
    if not value > 0:
        raise ValueError(f"{name} must be > 0 (got {value!r})")
