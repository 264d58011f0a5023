"""``model.kernels.ghk.JointStatementLogDensity``: the whole joint statement term as one operation.

- value and gradient with respect to every input the model differentiates (latents, the arms' changes,
  the change SD ratios, both error correlations, the chi SD ratios, and the weights) equal the graph the
  term was before (``add_joint_statement_term``'s noncentralities and correlation by indexing, the SDs by
  scatter, ``cell_error_intervals`` and the unrolled recursion of ``ghk_reference``) to 1e-10 relative,
  Python and numba, on the flagship's layout, on cells that skip part of the time x outcome grid, and on
  one-cell layouts of every event kind (looser only where an interval is nearly empty, as in
  ``test_ghk_kernel``);
- its gradient matches finite differences (``verify_grad``), the data inputs included;
- a correlation that is not positive definite gives -inf and a zero gradient.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode

from bayes_stenosis.model import joint_statement_design, threshold_design
from bayes_stenosis.model.kernels.ghk import joint_statement_log_density_op, register_numba
from bayes_stenosis.model.kernels.ghk_core import forward_pass
from bayes_stenosis.model.kernels.joint_core import cell_intervals
from bayes_stenosis.model.terms.threshold_joint import (
    EVENT_KIND_CODES,
    NO_STATEMENT,
    JointDesign,
    cell_error_intervals,
    cell_sds,
    joint_log_density,
)
from tests.model.ghk_reference import unrolled_whitened_log_density
from tests.model.test_ghk_kernel import ONE_CELL_LAYOUTS, assert_equal_at_points
from tests.model.test_threshold_joint import one_cell

PY = Mode(linker="py", optimizer=None)


def reference_term(joint, design, raw, change, sqrt_n, ratio, r_time, r_out, sd_values, pooling, weight, crit):
    """The term as graph, as it was built before the operation took it over."""
    t_idx, o_idx = joint.cells[:, 0], joint.cells[:, 1]
    lam = change[:, t_idx, o_idx] * sqrt_n[:, None] / ratio[o_idx][None, :]
    corr = r_time[t_idx[:, None], t_idx[None, :]] * r_out[o_idx[:, None], o_idx[None, :]]
    scale, s_between = cell_sds(joint, sd_values, pooling)
    intervals = cell_error_intervals(joint, design, lam, weight, scale, s_between, crit)
    return unrolled_whitened_log_density(joint, raw, intervals, weight, corr)


def term_functions(joint, design, grid, numba):
    """Reference and operation (Python; numba too with ``numba``): value and gradient with respect to
    ``(raw, change, ratio, r_time, r_out, sd_values, weight)``."""
    register_numba()
    raw, ratio, sd_values, weight = (pt.dvector(n) for n in ("raw", "ratio", "sd_values", "weight"))
    change, r_time, r_out = pt.tensor3("change"), pt.dmatrix("r_time"), pt.dmatrix("r_out")
    inputs = [raw, change, ratio, r_time, r_out, sd_values, weight]
    sqrt_n, pooling = pt.as_tensor(np.sqrt(joint.sizes)), pt.as_tensor(joint.pooling)
    crit = pt.as_tensor(design["crit"].to_numpy(dtype=float))
    args = (raw, change, sqrt_n, ratio, r_time, r_out, sd_values, pooling, weight, crit)
    reference = reference_term(joint, design, *args)
    fused = joint_log_density(joint, design, *args)

    def function(out, mode):
        grads = pytensor.grad(out, inputs, disconnected_inputs="ignore")  # no chi SD ratios: normal tests
        return pytensor.function(inputs, [out, *grads], mode=mode, on_unused_input="ignore")

    candidates = {"python": function(fused, PY)}
    if numba:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*object mode.*")  # the numba code, not a Python fallback
            candidates["numba"] = function(fused, "NUMBA")
    return function(reference, PY), candidates


def random_correlation(rng, n):
    a = rng.standard_normal((n, n + 2))
    corr = a @ a.T
    return corr / np.sqrt(np.outer(np.diag(corr), np.diag(corr)))


def random_point(rng, joint, grid, spread):
    """Latents and changes ~ N(0, spread^2) (spread 8: deep in the transforms' tails), SD ratios around 1,
    random correlation matrices, the design's weights perturbed."""
    n_time, n_out = grid
    return [
        spread * rng.standard_normal(len(joint.latent_order)),
        spread / 4 * rng.standard_normal((2, n_time, n_out)),
        np.exp(0.3 * rng.standard_normal(n_out)),
        random_correlation(rng, n_time),
        random_correlation(rng, n_out),
        np.exp(0.3 * rng.standard_normal(int(joint.has_sd.sum()))),
        joint.weights * np.exp(0.1 * rng.standard_normal(2)),
    ]


def narrowest(joint, design, point):
    """The narrowest interval a latent is transformed into at ``point`` (numpy, from the kernel's parts)."""
    raw, change, ratio, r_time, r_out, sd_values, weight = point
    t_idx, o_idx = joint.cells[:, 0], joint.cells[:, 1]
    lam = change[:, t_idx, o_idx] * np.sqrt(joint.sizes)[:, None] / ratio[o_idx][None, :]
    corr = r_time[np.ix_(t_idx, t_idx)] * r_out[np.ix_(o_idx, o_idx)]
    scale = np.ones(joint.has_sd.shape)
    scale[np.nonzero(joint.has_sd)] = sd_values
    s_between = np.sqrt(joint.pooling[:, 0] * scale[0] ** 2 + joint.pooling[:, 1] * scale[1] ** 2 + joint.pooling[:, 2])
    codes, crit_cells = cell_codes_and_crit(joint, design)
    lo, hi, lo_inf, hi_inf, _ = cell_intervals(lam, scale, s_between, crit_cells, codes, joint.within_t, weight)
    chol = [np.linalg.cholesky(corr[np.ix_(c, c)]) for c in map(np.flatnonzero, joint.latent)]
    return forward_pass(raw, chol[0], chol[1], lo, hi, lo_inf, hi_inf, weight, *joint.latent_index)[-1].min()


def cell_codes_and_crit(joint, design):
    """(3, C) event kind codes and critical values of each cell's statements (NO_STATEMENT and 1 where none)."""
    rows = (joint.within_row[0], joint.within_row[1], joint.between_row)
    kinds, crit = design["kind"].to_numpy(), design["crit"].to_numpy(dtype=float)
    codes = np.array([[EVENT_KIND_CODES[kinds[r]] if r >= 0 else NO_STATEMENT for r in row] for row in rows])
    crit_cells = np.array([[crit[r] if r >= 0 else 1.0 for r in row] for row in rows])
    return codes, crit_cells


def check_term(joint, design, grid, seed, points=30, numba=False):
    """Value and gradient equal at random points (``test_ghk_kernel.assert_equal_at_points``)."""
    reference, candidates = term_functions(joint, design, grid, numba)
    rng = np.random.default_rng(seed)

    def make_point(t):
        return random_point(rng, joint, grid, spread=(0.5, 2.0, 8.0)[t % 3])

    assert_equal_at_points(reference, candidates, make_point, lambda point: narrowest(joint, design, point), points)


def test_flagship_term_equals_the_graph(flagship):
    """The flagship: 8 cells covering 2 times x 4 outcomes, 16 latents, 16 chi SD ratios."""
    _, spec, inputs = flagship
    design = threshold_design(inputs, spec)
    joint = joint_statement_design(inputs, spec, design)
    check_term(joint, design, joint.grid, seed=1, numba=True)


def subset_design():
    """Two cells of a 2 x 2 grid, (week 0, outcome 1) and (week 1, outcome 0): t_idx and o_idx not the grid's."""
    sizes = np.array([15.0, 25.0])
    _, row = one_cell(sizes, ["inside", "below", "below"])
    design = pd.concat([row, row], ignore_index=True)
    joint = JointDesign(
        cells=np.array([[0, 1], [1, 0]]),
        labels=["0|1", "1|0"],
        arms=["ref", "new"],
        sizes=sizes,
        within_row=np.array([[1, 4], [2, 5]]),
        within_t=np.ones((2, 2), dtype=bool),
        between_row=np.array([0, 3]),
        pooling=np.tile([*(sizes - 1) / (sizes.sum() - 2), 0.0], (2, 1)),
        has_sd=np.ones((2, 2), dtype=bool),
        grid=(2, 2),
    )
    return joint, design


def test_cells_that_skip_part_of_the_grid_equal_the_graph():
    joint, design = subset_design()
    check_term(joint, design, joint.grid, seed=2, numba=True)


@pytest.mark.parametrize(("kinds", "test", "within_test"), ONE_CELL_LAYOUTS)
def test_one_cell_layouts_equal_the_graph(kinds, test, within_test):
    """One cell with all three statements, t and normal tests (normal tests have no chi SD ratio)."""
    joint, design = one_cell(np.array([15.0, 25.0]), kinds, test, within_test)
    check_term(joint, design, (1, 1), seed=3)


def op_point(joint, design, rng):
    """The operation's inputs at a random point: the float inputs, then event kinds, flags and layout."""
    raw, change, ratio, r_time, r_out, sd_values, weight = random_point(rng, joint, joint.grid or (1, 1), 0.5)
    codes, crit_cells = cell_codes_and_crit(joint, design)
    floats = [raw, change, np.sqrt(joint.sizes), ratio, r_time, r_out, sd_values, joint.pooling, crit_cells, weight]
    sd_arm, sd_cell = np.nonzero(joint.has_sd)
    layout = [joint.cells[:, 0], joint.cells[:, 1], sd_arm, sd_cell, *map(np.flatnonzero, joint.latent)]
    layout += list(joint.latent_index)
    return floats, [codes, joint.within_t, *layout]


def test_gradient_matches_finite_differences():
    """``verify_grad`` with respect to every float input, the data ones (sqrt n, pooling, critical values)
    included, on the two-cell layout (the correlations' off-diagonal entries matter there)."""
    joint, design = subset_design()
    rng = np.random.default_rng(4)
    for _ in range(3):
        floats, rest = op_point(joint, design, rng)

        def value(*args, rest=rest):
            return joint_statement_log_density_op(*args, *rest)[0]

        pytensor.gradient.verify_grad(value, floats, rng=rng, mode=PY, abs_tol=1e-6, rel_tol=1e-6)


def test_a_correlation_that_is_not_positive_definite_gives_minus_infinity(flagship):
    """An outcome correlation with an entry above 1: -inf and a zero gradient, not an error or NaN."""
    _, spec, inputs = flagship
    design = threshold_design(inputs, spec)
    joint = joint_statement_design(inputs, spec, design)
    floats, rest = op_point(joint, design, np.random.default_rng(5))
    assert np.isfinite(joint_statement_log_density_op(*floats, *rest)[0].eval())
    floats[5] = floats[5].copy()
    floats[5][3, 2] = floats[5][2, 3] = 1.5
    value, *grads = pytensor.function([], joint_statement_log_density_op(*floats, *rest), mode=PY)()
    assert np.isneginf(value)
    assert all(np.array_equal(g, np.zeros_like(g)) for g in grads)


def test_the_operations_constant_inputs_are_contiguous(flagship):
    """numba embeds a strided constant array as a dynamic global, and code with one cannot be cached on disk:
    every constant input of the flagship's operation is C-contiguous (a column of ``joint.cells`` was not)."""
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import applys_between

    from bayes_stenosis.model import build_model, resolve_prior
    from bayes_stenosis.model.kernels.ghk import JointStatementLogDensity

    _, spec, inputs = flagship
    model = build_model(inputs, spec, resolve_prior(spec, "weakly_informative", inputs))
    logp = model.logp()
    (node,) = [n for n in applys_between(model.value_vars, [logp]) if isinstance(n.op, JointStatementLogDensity)]
    constants = [v.data for v in node.inputs if isinstance(v, Constant)]
    assert len(constants) >= 9
    assert all(np.asarray(c).flags["C_CONTIGUOUS"] for c in constants)
