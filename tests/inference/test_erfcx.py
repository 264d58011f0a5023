"""The pointer-free ``erfcx`` for numba (``inference.erfcx``) against scipy and an exact decimal reference."""

from __future__ import annotations

from decimal import Decimal, getcontext

import numpy as np
import pytensor
import pytensor.tensor as pt
import scipy.special as sc

from bayes_stenosis.inference.erfcx import erfcx

ULP = np.finfo(float).eps


def _two_exp_square(x: float) -> float:
    """2 exp(x^2) in 40-digit decimal arithmetic (x is exact in binary, so x^2 is exact here)."""
    getcontext().prec = 40
    return float(2 * (Decimal(x) ** 2).exp())


def test_matches_scipy_to_a_few_ulps_where_scipy_is_exact():
    """x >= -1: scipy's erfcx (Faddeeva package) is accurate to about an ulp; ours must be within 10."""
    xs = np.concatenate(
        [np.linspace(-1, 40, 100_001), np.geomspace(1e-300, 1e300, 2_001), -np.geomspace(1e-300, 1, 501)]
    )
    ours = np.array([erfcx(x) for x in xs])
    rel = np.abs(ours / sc.erfcx(xs) - 1)
    assert rel.max() < 10 * ULP, f"max relative error {rel.max():.2e} at x = {xs[rel.argmax()]}"


def test_negative_arguments_against_the_closed_form():
    """x < -1: erfcx(x) = 2 exp(x^2) - erfcx(-x); 2 exp(x^2) from exact decimal arithmetic, the small
    second term from scipy. scipy itself rounds x^2 here (7e-14 relative at x = -26), ours must not."""
    xs = -np.linspace(1, 26.6, 20_001)
    reference = np.array([_two_exp_square(x) for x in xs]) - sc.erfcx(-xs)
    ours = np.array([erfcx(x) for x in xs])
    rel = np.abs(ours / reference - 1)
    assert rel.max() < 10 * ULP, f"max relative error {rel.max():.2e} at x = {xs[rel.argmax()]}"


def test_edges():
    assert np.isnan(erfcx(np.nan))
    assert erfcx(-27.0) == np.inf
    assert erfcx(0.0) == 1.0
    assert erfcx(np.inf) == 0.0


def test_pytensor_numba_mode_uses_it_and_agrees():
    """pytensor's numba backend dispatches Erfcx here, and a compiled graph with it (and its gradient)
    gives scipy's values."""
    from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key
    from pytensor.scalar.math import Erfcx

    from bayes_stenosis.inference import erfcx as module

    assert numba_funcify_and_cache_key.dispatch(Erfcx) is module.numba_funcify_erfcx
    x = pt.dvector("x")
    out = pt.erfcx(x)
    fn = pytensor.function([x], [out, pytensor.grad(out.sum(), x)], mode="NUMBA")
    xs = np.array([-5.0, -0.3, 0.0, 0.7, 12.0, 30.0])
    value, grad = fn(xs)
    np.testing.assert_allclose(value, sc.erfcx(xs), rtol=10 * ULP)
    # d/dx erfcx(x) = 2 x erfcx(x) - 2 / sqrt(pi)
    np.testing.assert_allclose(grad, 2 * xs * sc.erfcx(xs) - 2 / np.sqrt(np.pi), rtol=1e-12, atol=1e-15)
