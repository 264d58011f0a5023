"""``model.terms.intervals``: interval arithmetic with infinite ends, and the transforms into an interval."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from scipy import stats

from bayes_stenosis.model.terms.intervals import Interval, interval_transform

FAST = Mode(linker="py", optimizer=None)


def _interval(lo, hi):
    """An Interval of constants; None for an infinite end (stand-in value 0)."""
    return Interval(
        pt.as_tensor(0.0 if lo is None else float(lo)),
        pt.as_tensor(0.0 if hi is None else float(hi)),
        pt.as_tensor(np.array(lo is None)),
        pt.as_tensor(np.array(hi is None)),
    )


@pytest.mark.parametrize(("lo", "hi"), [(-1.5, 0.7), (2.0, None), (None, -3.0), (None, None), (-40.0, -39.9)])
def test_transform_maps_the_line_onto_the_interval_with_its_jacobian(lo, hi):
    """Monotone onto (lo, hi), log-Jacobian = log of the numerical derivative, the identity far inside an
    interval with one end or none; the standard normal density pushed through it integrates to
    P(lo < Z < hi) (also for a narrow interval far in the tail)."""
    raw = pt.vector("raw")
    eps, log_jac, log_ok = interval_transform(raw, _interval(lo, hi))
    f = pytensor.function([raw], [eps, log_jac, log_ok], mode=FAST)
    grid = np.linspace(-60, 60, 240_001)
    e, j, ok = f(grid)
    assert np.all(ok == 0) and np.all(np.diff(e) >= 0)  # increasing (flat only where it rounds onto an end)
    assert (lo is None or e.min() >= lo) and (hi is None or e.max() <= hi)
    step = grid[1] - grid[0]
    slope = np.gradient(e, step)
    resolved = j > -12  # where the finite difference resolves the slope
    resolved[[0, -1]] = False
    np.testing.assert_allclose(j[resolved], np.log(slope[resolved]), atol=1e-4)
    density = np.exp(-0.5 * e**2 + j) / np.sqrt(2 * np.pi)
    exact = (1.0 if hi is None else _phi(hi)) - (0.0 if lo is None else _phi(lo))
    assert np.trapezoid(density, grid) == pytest.approx(exact, rel=1e-5, abs=1e-300)
    if lo is None or hi is None:  # one end or none: the identity 20 units inside the interval
        free = (grid < (np.inf if hi is None else hi - 20)) & (grid > (-np.inf if lo is None else lo + 20))
        np.testing.assert_allclose(e[free], grid[free], atol=1e-8)


def _phi(x):
    return stats.norm.cdf(x)


def test_an_empty_interval_is_refused_with_finite_gradients():
    """hi <= lo: log_ok = -inf; the value, Jacobian and their gradients stay finite."""
    raw, hi = pt.scalar("raw"), pt.scalar("hi")
    iv = Interval(pt.as_tensor(1.0), hi, pt.as_tensor(np.array(False)), pt.as_tensor(np.array(False)))
    eps, log_jac, log_ok = interval_transform(raw, iv)
    total = eps + log_jac
    f = pytensor.function([raw, hi], [eps, log_jac, log_ok, *pt.grad(total, [raw, hi])], mode=FAST)
    for h in (0.5, 1.0):
        e, j, ok, g_raw, g_hi = f(0.3, h)
        assert ok == -np.inf and np.isfinite([e, j, g_raw, g_hi]).all()
    assert f(0.3, 2.0)[2] == 0.0


def test_interval_arithmetic_keeps_infinite_ends():
    """(-inf, 2) - (1, 3) = (-inf, 1); (0, inf) ∩ (-inf, 5) = (0, 5); scaling and shifting keep the masks."""
    a, b = _interval(None, 2), _interval(1, 3)
    d = a.minus(b).scaled(2.0).shifted(1.0)
    assert bool(d.lo_inf.eval()) and not bool(d.hi_inf.eval()) and float(d.hi.eval()) == pytest.approx(3.0)
    c = _interval(0, None).intersect(_interval(None, 5))
    assert not bool(c.lo_inf.eval()) and not bool(c.hi_inf.eval())
    assert (float(c.lo.eval()), float(c.hi.eval())) == (0.0, 5.0)
    both = _interval(-1, 4).intersect(_interval(2, 6))
    assert (float(both.lo.eval()), float(both.hi.eval())) == (2.0, 4.0)
