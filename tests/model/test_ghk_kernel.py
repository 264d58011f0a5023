"""``model.kernels.ghk``: the fused GHK operation of the joint statement term against the elementwise graph.

- value and gradient (with respect to the latents, noncentralities, SD ratios, correlation and weights)
  equal the unrolled graph it replaced (``ghk_reference``) to 1e-10 relative, Python and numba
  implementations, at random points from the centre to the tails, on the flagship's layout and on one-cell
  layouts of every event kind (looser only where an interval is nearly empty, which makes the gradient
  itself ill-conditioned: ``check_layout``);
- the gradient matches finite differences (``verify_grad``);
- one latent in a finite interval integrates to the normal probability of the interval (scipy), two
  correlated latents in a rectangle to the bivariate normal probability (scipy);
- an empty interval gives -inf with a finite gradient.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from pytensor.graph.traversal import applys_between
from scipy import integrate, stats

from bayes_stenosis.model import joint_statement_design, threshold_design
from bayes_stenosis.model.kernels.ghk import GHKLogDensity, ghk_log_density_op, register_numba
from bayes_stenosis.model.kernels.ghk_core import forward_pass
from bayes_stenosis.model.terms.threshold_joint import cell_error_intervals, whitened_log_density
from tests.model.ghk_reference import unrolled_whitened_log_density
from tests.model.test_threshold_joint import one_cell

PY = Mode(linker="py", optimizer=None)
RTOL = 1e-10


def compiled_pair(joint, design, numba: bool):
    """The reference function of the log-density and its gradient, the fused ones (the recursion as one
    operation: Python, and numba with ``numba``) and the narrowest interval at a point."""
    register_numba()
    n_cells, n_latent = len(joint.labels), len(joint.latent_order)
    raw, sb, weight = pt.dvector("raw"), pt.dvector("s_between"), pt.dvector("weight")
    lam, scale, corr = pt.dmatrix("lam"), pt.dmatrix("scale"), pt.dmatrix("corr")
    inputs = [raw, lam, scale, sb, corr, weight]
    crit = pt.as_tensor(design["crit"].to_numpy(dtype=float))
    intervals = cell_error_intervals(joint, design, lam, weight, scale, sb, crit)
    outputs = {
        "reference": unrolled_whitened_log_density(joint, raw, intervals, weight, corr),
        "fused": whitened_log_density(joint, raw, intervals, weight, corr),
    }

    def function(out, mode):
        return pytensor.function(inputs, [out, *pytensor.grad(out, inputs)], mode=mode, on_unused_input="ignore")

    candidates = {"fused": function(outputs["fused"], PY)}
    if numba:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*object mode.*")  # the numba code, not a Python fallback
            candidates["fused (numba)"] = function(outputs["fused"], "NUMBA")
    (node,) = [n for n in applys_between(inputs, [outputs["fused"]]) if isinstance(n.op, GHKLogDensity)]
    op_inputs = pytensor.function(inputs, node.inputs, mode=PY, on_unused_input="ignore")

    def narrowest(*point):
        """The narrowest interval a latent is transformed into at ``point``."""
        return forward_pass(*op_inputs(*point))[-1].min()

    return function(outputs["reference"], PY), candidates, narrowest, (n_cells, n_latent)


def random_point(rng, joint, n_cells, n_latent, spread):
    """Latents and noncentralities ~ N(0, spread^2) (spread 8: deep in the transforms' tails), SD ratios
    around 1, a random correlation matrix, the design's weights perturbed."""
    a = rng.standard_normal((n_cells, n_cells + 2))
    corr = a @ a.T
    corr /= np.sqrt(np.outer(np.diag(corr), np.diag(corr)))
    return [
        spread * rng.standard_normal(n_latent),
        spread * rng.standard_normal((2, n_cells)),
        np.exp(0.3 * rng.standard_normal((2, n_cells))),
        np.exp(0.3 * rng.standard_normal(n_cells)),
        corr,
        joint.weights * np.exp(0.1 * rng.standard_normal(2)),
    ]


def assert_same(reference, other, conditioning):
    """Equal to RTOL relative (of the largest component, at least 1) times ``conditioning``."""
    for want, got in zip(reference, other, strict=True):
        want, got = np.asarray(want), np.asarray(got)
        if want.size == 0:  # e.g. the gradient with respect to no chi SD ratios
            assert got.size == 0
            continue
        if want.ndim == 0 and np.isneginf(want):
            assert np.isneginf(got)
            continue
        tol = RTOL * conditioning
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max()))


def check_layout(joint, design, seed, points=30, numba=False):
    """Value and gradient equal at random points (:func:`assert_equal_at_points`)."""
    reference, candidates, narrowest, (n_cells, n_latent) = compiled_pair(joint, design, numba)
    rng = np.random.default_rng(seed)

    def make_point(t):
        return random_point(rng, joint, n_cells, n_latent, spread=(0.5, 2.0, 8.0)[t % 3])

    assert_equal_at_points(reference, candidates, make_point, lambda point: narrowest(*point), points)


def assert_equal_at_points(reference, candidates, make_point, narrowest, points):
    """Every candidate function equals ``reference`` at ``make_point(t)``, t < ``points``. An interval of width
    w (a nearly empty polygon) makes the gradient ill-conditioned: log w's derivative 1/w enters both ends and
    cancels, so both implementations round to ~1e-16 / w; the tolerance is RTOL x max(1, 1e-3 / w) with w
    ``narrowest(point)``, and most points (3 in 4) must have w > 1e-3, more than half a finite value."""
    finite = well_conditioned = 0
    for t in range(points):
        point = make_point(t)
        want = reference(*point)
        finite += bool(np.isfinite(want[0]))
        conditioning = max(1.0, 1e-3 / max(narrowest(point), 1e-300))
        well_conditioned += conditioning == 1.0
        for function in candidates.values():
            assert_same(want, function(*point), conditioning)
    assert finite > points // 2
    assert well_conditioned > 3 * points // 4


def test_flagship_layout_equals_the_unrolled_graph(flagship):
    """The flagship's 8 cells and 16 latents (P>0.05 between arms, P<0.05 within)."""
    _, spec, inputs = flagship
    design = threshold_design(inputs, spec)
    joint = joint_statement_design(inputs, spec, design)
    assert len(joint.latent_order) == 16
    check_layout(joint, design, seed=1, numba=True)


#: One-cell layouts (event kinds of the between-arm, reference-arm and new-arm statements; tests) of every kind.
ONE_CELL_LAYOUTS = [
    (["inside", "below", "below"], "two_sample_t", "paired_t"),
    (["inside", "inside", "above"], "two_sample_t", "paired_t"),
    (["below", "above", "inside"], "normal", "normal"),
    (["below", "inside", "below"], "two_sample_t", "normal"),
]


@pytest.mark.parametrize(("kinds", "test", "within_test"), ONE_CELL_LAYOUTS)
def test_one_cell_layouts_equal_the_unrolled_graph(kinds, test, within_test):
    """One cell with all three statements: the new arm's interval is cut by the between-arm one (Python
    implementation; the numba one is checked on the flagship)."""
    joint, design = one_cell(np.array([15.0, 25.0]), kinds, test, within_test)
    check_layout(joint, design, seed=2)


def op_inputs(lo, hi, lo_inf, hi_inf, chol0, chol1=None, weight=(0.6, 0.8)):
    """Constant layout for latents of the reference arm only (one per cell), or of both arms."""
    n0 = chol0.shape[0]
    arm_of, cell_of, index_of = np.zeros(n0, int), np.arange(n0), np.arange(n0)
    chol1 = np.zeros((0, 0)) if chol1 is None else chol1
    return chol0, chol1, lo, hi, lo_inf, hi_inf, np.asarray(weight), arm_of, cell_of, index_of


def test_one_latent_integrates_to_the_normal_probability_of_its_interval():
    """Unconstrained value integrated out: Phi(hi) - Phi(lo), and Phi(hi) / 1 - Phi(lo) for one end (scipy)."""
    raw = pt.dscalar("raw")
    cases = [(-0.3, 1.2, False, False), (2.0, 2.5, False, False), (-7.0, -6.0, False, False)]
    cases += [(1.5, 0.0, False, True), (0.0, -2.5, True, False)]
    for lo, hi, lo_inf, hi_inf in cases:
        chol0, chol1, *rest = op_inputs(
            np.array([[lo], [0.0], [0.0]]),
            np.array([[hi], [0.0], [0.0]]),
            np.array([[lo_inf], [True], [True]]),
            np.array([[hi_inf], [True], [True]]),
            np.eye(1),
        )
        value = ghk_log_density_op(raw[None], chol0, chol1, *rest)[0] - 0.5 * np.log(2 * np.pi)
        density = pytensor.function([raw], pt.exp(value), mode=PY)
        total = integrate.quad(lambda r, f=density: float(f(r)), -60, 60, limit=400, epsabs=1e-14, epsrel=1e-11)[0]
        upper = np.inf if hi_inf else hi
        lower = -np.inf if lo_inf else lo
        want = (
            stats.norm.cdf(upper) - stats.norm.cdf(lower) if lower < 0 else stats.norm.sf(lower) - stats.norm.sf(upper)
        )
        np.testing.assert_allclose(total, want, rtol=1e-7)


def test_two_correlated_latents_integrate_to_the_bivariate_normal_rectangle():
    """z = L eps, z_1 in (-0.5, 1), z_2 in (0.2, 1.5), corr 0.6: the bivariate normal probability (scipy)."""
    corr = np.array([[1.0, 0.6], [0.6, 1.0]])
    chol0, chol1, *rest = op_inputs(
        np.array([[-0.5, 0.2], [0, 0], [0, 0]]),
        np.array([[1.0, 1.5], [0, 0], [0, 0]]),
        np.array([[False, False], [True, True], [True, True]]),
        np.array([[False, False], [True, True], [True, True]]),
        np.linalg.cholesky(corr),
    )
    raw = pt.dvector("raw")
    value = ghk_log_density_op(raw, chol0, chol1, *rest)[0] - np.log(2 * np.pi)
    density = pytensor.function([raw], pt.exp(value), mode=PY)
    total = integrate.dblquad(lambda b, a: float(density(np.array([a, b]))), -40, 40, -40, 40, epsabs=1e-12)[0]
    mvn = stats.multivariate_normal(mean=[0, 0], cov=corr)
    want = mvn.cdf([1.0, 1.5]) - mvn.cdf([-0.5, 1.5]) - mvn.cdf([1.0, 0.2]) + mvn.cdf([-0.5, 0.2])
    np.testing.assert_allclose(total, want, rtol=1e-6)


def test_gradient_matches_finite_differences():
    """``verify_grad`` of the value with respect to latents, Cholesky factor, interval ends and weights."""
    joint, design = one_cell(np.array([15.0, 25.0]), ["inside", "below", "below"])
    rng = np.random.default_rng(3)
    lo = np.array([[-2.0], [-1.5], [-2.5]])
    hi = np.array([[1.0], [0.5], [2.0]])
    lo_inf = np.array([[False], [True], [False]])
    hi_inf = np.array([[False], [False], [False]])
    layout = [np.array(v) for v in ([0, 1], [0, 0], [0, 0])]

    def value(raw, chol0, chol1, lo_, hi_, weight):
        return ghk_log_density_op(raw, chol0, chol1, lo_, hi_, lo_inf, hi_inf, weight, *layout)[0]

    for _ in range(3):
        point = [rng.standard_normal(2), np.array([[1.1]]), np.array([[0.9]]), lo, hi, joint.weights]
        pytensor.gradient.verify_grad(value, point, rng=rng, mode=PY, abs_tol=1e-6, rel_tol=1e-6)


def test_empty_interval_is_minus_infinity_with_a_finite_gradient():
    raw = pt.dvector("raw")
    chol0, chol1, lo, hi, lo_inf, hi_inf, *rest = op_inputs(
        np.array([[1.0], [0], [0]]),
        np.array([[0.5], [0], [0]]),
        np.zeros((3, 1), bool),
        np.array([[False], [True], [True]]),
        np.eye(1),
    )
    lo_inf = np.array([[False], [True], [True]])
    outputs = ghk_log_density_op(raw, chol0, chol1, lo, hi, lo_inf, hi_inf, *rest)
    value = pytensor.function([raw], [outputs[0], pytensor.grad(outputs[0], raw)], mode=PY)(np.array([0.3]))
    assert np.isneginf(value[0]) and np.isfinite(value[1]).all()
