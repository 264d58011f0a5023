"""``model.terms.threshold_joint``: the joint statement term and its simulator against known answers.

- the simulator: each statistic is the noncentral t of the per-statement likelihood (scipy's ``nct``);
  the numerators of one cell and of one arm across cells have the correlations the model implies;
- the term: its density, integrated over the latent numerators (a grid in the unconstrained space, so the
  interval transforms and their Jacobians are what is integrated) and over the chi SDs (quadrature),
  equals the Monte Carlo probability of the statements under the simulator;
- an empty polygon gives a log-density of -inf with finite gradients;
- event kinds as data give the same log-density and gradient as kinds as constants;
- the term's noncentralities agree with the per-statement ones (``threshold_noncentrality``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from pytensor.graph.replace import vectorize_graph
from scipy import stats

from bayes_stenosis.model import (
    JointDesign,
    build_model,
    chi_nodes,
    joint_statement_design,
    prepare_inputs,
    resolve_prior,
    simulate_joint_statement_statistics,
    statement_dependence,
    statement_reproduced,
    threshold_design,
)
from bayes_stenosis.model.terms.threshold_joint import add_joint_statement_term
from bayes_stenosis.spec import load_spec
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import spec_variant, write_study

N = 400_000
# numpy evaluation of the graphs as built: no C compilation (minutes on a loaded CI runner), no rewrites
FAST = Mode(linker="py", optimizer=None)


def one_cell(sizes, kinds, test="two_sample_t", within_test="paired_t"):
    """A one-cell design: row 0 between arms, row 1 within the reference arm, row 2 within the new arm."""
    sizes = np.asarray(sizes, dtype=float)
    t_within = within_test == "paired_t"
    df_between = {"two_sample_t": sizes.sum() - 2, "normal": np.inf}[test]
    dfs = [df_between, *(sizes - 1 if t_within else [np.inf, np.inf])]
    crit = [stats.t.ppf(0.975, d) if np.isfinite(d) else stats.norm.ppf(0.975) for d in dfs]
    design = pd.DataFrame({"kind": kinds, "crit": crit, "df": dfs, "comparison": ["between", "within", "within"]})
    pooling = [*(sizes - 1) / (sizes.sum() - 2), 0.0] if test == "two_sample_t" else [0.0, 0.0, 1.0]
    joint = JointDesign(
        cells=np.array([[0, 0]]),
        labels=["4|ODI"],
        arms=["ref", "new"],
        sizes=sizes,
        within_row=np.array([[1], [2]]),
        within_t=np.array([[t_within], [t_within]]),
        between_row=np.array([0]),
        pooling=np.array([pooling]),
        has_sd=np.array([[t_within or test != "normal"], [t_within or test != "normal"]]),
    )
    return joint, design


def arm_noncentrality(theta, sizes, n_draws):
    """lambda_a = theta_a sqrt(n_a) (sigma = 1), shape (draws, 2, 1)."""
    return np.tile((np.asarray(theta) * np.sqrt(sizes)).reshape(1, 2, 1), (n_draws, 1, 1))


def test_each_statistic_is_the_noncentral_t_of_its_statement():
    """T_b ~ nct(n1 + n2 - 2, delta / sqrt(1/n1 + 1/n2)), T_w ~ nct(n_a - 1, theta_a sqrt(n_a)): per statement
    the simulated share of its event equals scipy's probability within 4 binomial SEs."""
    sizes, theta = np.array([15.0, 25.0]), np.array([-0.3, -0.8])
    joint, design = one_cell(sizes, ["inside", "below", "below"])
    t_stat = simulate_joint_statement_statistics(
        arm_noncentrality(theta, sizes, N), np.ones((N, 1, 1)), joint, design, np.random.default_rng(1)
    )
    assert t_stat.shape == (N, 1, 3)
    lam = [(theta[1] - theta[0]) / np.sqrt((1 / sizes).sum()), *(theta * np.sqrt(sizes))]
    dfs, c = design["df"].to_numpy(), design["crit"].to_numpy()
    exact = [
        stats.nct.cdf(c[0], dfs[0], lam[0]) - stats.nct.cdf(-c[0], dfs[0], lam[0]),
        stats.nct.cdf(-c[1], dfs[1], lam[1]),
        stats.nct.cdf(-c[2], dfs[2], lam[2]),
    ]
    share = statement_reproduced(t_stat, design)[:, 0, :].mean(axis=0)
    se = np.sqrt(np.array(exact) * (1 - np.array(exact)) / N)
    assert np.all(np.abs(share - exact) < 4 * se), (share, exact)
    # the statistics themselves: Kolmogorov-Smirnov against the noncentral t of each
    for k in range(3):
        assert stats.kstest(t_stat[:20_000, 0, k], stats.nct(dfs[k], lam[k]).cdf).pvalue > 1e-4


def test_numerators_have_the_correlations_the_model_implies():
    """Normal tests (S = 1), so T is the numerator: corr(T_w,ref, T_b) = -w_ref, corr(T_w,new, T_b) = w_new,
    corr(T_w,ref, T_w,new) = 0 within a cell; one arm's statistics of two cells correlate as R (0.6 here)."""
    sizes = np.array([12.0, 30.0])
    joint, design = one_cell(sizes, ["inside", "below", "below"], test="normal", within_test="normal")
    t_stat = simulate_joint_statement_statistics(
        arm_noncentrality([0.2, -0.5], sizes, N), np.ones((N, 1, 1)), joint, design, np.random.default_rng(2)
    )[:, 0, :]
    w_ref, w_new = joint.weights
    assert w_ref**2 + w_new**2 == pytest.approx(1.0)
    corr = np.corrcoef(t_stat.T)
    tol = 4 / np.sqrt(N)
    assert corr[0, 1] == pytest.approx(-w_ref, abs=tol) and corr[0, 2] == pytest.approx(w_new, abs=tol)
    assert abs(corr[1, 2]) < tol
    np.testing.assert_allclose(t_stat.std(axis=0), 1.0, atol=4 / np.sqrt(2 * N))

    two = JointDesign(
        cells=np.array([[0, 0], [1, 0]]),
        labels=["4|ODI", "8|ODI"],
        arms=["ref", "new"],
        sizes=sizes,
        within_row=np.array([[0, 1], [-1, -1]]),
        within_t=np.zeros((2, 2), dtype=bool),
        between_row=np.array([-1, -1]),
        pooling=np.zeros((2, 3)),
        has_sd=np.zeros((2, 2), dtype=bool),
    )
    design2 = design.iloc[1:].reset_index(drop=True)
    r = np.tile(np.array([[1.0, 0.6], [0.6, 1.0]]), (N, 1, 1))
    lam = np.zeros((N, 2, 2))
    t2 = simulate_joint_statement_statistics(lam, r, two, design2, np.random.default_rng(3))[:, 0, :]
    assert np.corrcoef(t2.T)[0, 1] == pytest.approx(0.6, abs=tol)


def _one_cell_model(joint, design, theta):
    with pm.Model(coords={"arm": ["ref", "new"]}) as model:
        change = pt.as_tensor(np.asarray(theta, dtype=float).reshape(2, 1, 1))
        crit = pt.as_tensor(design["crit"].to_numpy(dtype=float))
        add_joint_statement_term(joint, design, change, pt.ones(1), crit, pt.eye(1), pt.eye(1))
    return model


@pytest.mark.parametrize(
    ("sizes", "kinds", "theta"),
    [
        ((15, 25), ["inside", "inside", "below"], [-0.1, -0.7]),
        # the new arm's n is small: for large S_new the cell's polygon is empty (some quadrature nodes)
        ((40, 10), ["inside", "inside", "above"], [0.1, 0.6]),
    ],
)
def test_joint_density_integrates_to_the_probability_of_the_statements(sizes, kinds, theta):
    """P(all three statements | lambda) two ways: the term's exp(log-density) integrated over its two latent
    numerators (trapezoid on a grid of the unconstrained values: the transforms' Jacobians are integrated
    too) and over both chi SDs (6 x 6 Gauss-Hermite nodes of the chi quadrature), against the share of
    simulated statistics that make all three statements (400,000 replicates): within 4 binomial SEs."""
    sizes = np.asarray(sizes, dtype=float)
    joint, design = one_cell(sizes, kinds)
    model = _one_cell_model(joint, design, theta)
    chi2, raw = model["threshold_joint_chi2"], model["threshold_joint_raw"]
    chi2_batch, raw_batch = pt.matrix("chi2"), pt.matrix("raw")
    batched = vectorize_graph(model.potentials[0], replace={chi2: chi2_batch, raw: raw_batch})
    density = pytensor.function([chi2_batch, raw_batch], batched, mode=FAST)
    grid_ref = grid_new = np.linspace(-20, 20, 201)  # the latents are ~N(0, 1) where unconstrained
    g_ref, g_new = np.meshgrid(grid_ref, grid_new, indexing="ij")
    raws = np.column_stack([g_ref.ravel(), g_new.ravel()])
    (s_ref, w_ref), (s_new, w_new) = (chi_nodes(n - 1, 6) for n in sizes)
    total, empty = 0.0, 0
    for a, la in zip(s_ref, w_ref, strict=True):
        for b, lb in zip(s_new, w_new, strict=True):
            chi2_values = np.tile([a * a * (sizes[0] - 1), b * b * (sizes[1] - 1)], (len(raws), 1))
            log_density = density(chi2_values, raws)
            assert not np.isnan(log_density).any()
            empty += int(np.isneginf(log_density).all())
            values = np.exp(log_density).reshape(g_ref.shape)
            total += np.exp(la + lb) * np.trapezoid(np.trapezoid(values, grid_new, axis=1), grid_ref)
    t_stat = simulate_joint_statement_statistics(
        arm_noncentrality(theta, sizes, N), np.ones((N, 1, 1)), joint, design, np.random.default_rng(4)
    )
    share = statement_reproduced(t_stat, design).all(axis=-1).mean()
    assert abs(total - share) < 4 * np.sqrt(share * (1 - share) / N), (total, share)
    if kinds[2] == "above":
        assert empty > 0  # the guard was exercised


def test_an_empty_polygon_has_minus_infinite_density_and_finite_gradients():
    """Reference arm significantly worse, new arm significantly better, no difference between them: with the
    arms' SD ratios far apart the polygon is empty (log-density -inf); the gradient stays finite there and
    at a point where it is not empty."""
    sizes = np.array([40.0, 10.0])
    joint, design = one_cell(sizes, ["inside", "inside", "above"])
    model = _one_cell_model(joint, design, [0.1, 0.6])
    logp, dlogp = model.compile_logp(mode=FAST), model.compile_dlogp(mode=FAST)
    point = model.initial_point()
    assert np.isfinite(logp(point)) and np.isfinite(dlogp(point)).all()
    # S_ref = 0.3 (chi2 = 0.09 x 39), S_new = 2.5 (chi2 = 6.25 x 9): the projection of u_ref is empty
    point["threshold_joint_chi2_log__"] = np.log([0.09 * 39, 6.25 * 9])
    assert np.isneginf(logp(point))
    assert np.isfinite(dlogp(point)).all()


@pytest.fixture(scope="module")
def flagship():
    spec, _ = load_spec("default")
    inputs = prepare_inputs(load_study("farpour2022"), spec)
    return spec, inputs


def test_flagship_layout_and_dispatch(flagship):
    """The flagship: 8 cells, both arms' numerators latent in each, 16 chi SDs pooled equally
    (19.5 per arm: weights 1/sqrt(2)); the spec switch, a test on follow-up scores, one statement and
    between-arm statements only go the per-statement way."""
    spec, inputs = flagship
    design = threshold_design(inputs, spec)
    joint = joint_statement_design(inputs, spec, design)
    assert joint is not None and joint.labels[:2] == ["4|VAS", "4|ODI"] and len(joint.labels) == 8
    assert joint.latent.all() and joint.has_sd.all() and joint.within_t.all()
    np.testing.assert_allclose(joint.weights, [2**-0.5, 2**-0.5])
    np.testing.assert_allclose(joint.pooling, np.tile([0.5, 0.5, 0.0], (8, 1)))
    # every row in exactly one place
    rows = np.sort(np.r_[joint.within_row.ravel(), joint.between_row])
    np.testing.assert_array_equal(rows, np.arange(24))
    assert statement_dependence(design, spec)["treatment"] == "joint"
    for variant, reason in (
        ({"statement_dependence": "independent"}, "statement_dependence"),
        ({"between_test": "follow_up"}, "follow_up"),
    ):
        other = spec_variant(thresholds=variant)
        assert joint_statement_design(inputs, other, threshold_design(inputs, other)) is None
        assert reason in statement_dependence(threshold_design(inputs, other), other)["reason"]
    assert "one statement" in statement_dependence(design.iloc[:1], spec)["reason"]
    between = design[design["comparison"] == "between"]
    assert "between-arm statements only" in statement_dependence(between, spec)["reason"]


def _statement(time, comparison, relation, arm="", direction=""):
    test = "two_sample_t" if comparison == "between" else "paired_t"
    return {"outcome": "ODI", "time": time, "comparison": comparison, "arm": arm, "relation": relation,
            "alpha": 0.05, "direction": direction, "test": test}  # fmt: skip


def test_kinds_as_data_give_the_same_density(tmp_path):
    """Event kinds as data (one compile for every pattern) and as constants: the same log-density and
    gradient at a random point, on a two-cell study whose statements use every kind (inside, below, above)
    and every interval shape (two ends, one end, the whole line)."""
    rows = [
        _statement(4, "between", ">"),
        _statement(8, "between", "<", direction="favours_new"),
        _statement(4, "within", "<", arm="new_arm", direction="improvement"),
        _statement(8, "within", "<", arm="reference_arm", direction="worsening"),
        _statement(4, "within", ">", arm="reference_arm"),
    ]
    folder = write_study(tmp_path / "s", follow_up=(4.0, 8.0), rows={"thresholds.csv": rows})
    spec, _ = load_spec("default")
    inputs = prepare_inputs(load_study(folder), spec)
    assert set(threshold_design(inputs, spec)["kind"]) == {"inside", "below", "above"}
    prior = resolve_prior(spec, "weakly_informative", inputs)
    constant = build_model(inputs, spec, prior)
    data = build_model(inputs, spec_variant(thresholds={"kinds_as_data": True}), prior)
    assert "threshold_joint_likelihood" in data.named_vars and "threshold_kind" in data.named_vars
    rng = np.random.default_rng(5)
    point = {k: v + rng.normal(0, 0.5, np.shape(v)) for k, v in constant.initial_point().items()}
    logp = [m.compile_logp(mode=FAST)(point) for m in (constant, data)]
    assert np.isfinite(logp[0]) and logp[0] == pytest.approx(logp[1], rel=1e-12)
    dlogp = [m.compile_dlogp(mode=FAST)(point) for m in (constant, data)]
    assert np.isfinite(dlogp[0]).all()
    np.testing.assert_allclose(dlogp[0], dlogp[1], rtol=1e-10)


def test_flagship_noncentralities_agree_with_the_statements(flagship):
    """lambda of each within-arm row is its arm's lambda_{a,k}; lambda of each between-arm row is
    w_new lambda_new - w_ref lambda_ref (forward draws: the sign conventions of threshold_design)."""
    spec, inputs = flagship
    model = build_model(inputs, spec, resolve_prior(spec, "weakly_informative", inputs))
    design = threshold_design(inputs, spec)
    joint = joint_statement_design(inputs, spec, design)
    lam, arm_lam = pm.draw([model["threshold_noncentrality"], model["threshold_arm_noncentrality"]], 40, random_seed=6)
    w_ref, w_new = joint.weights
    for k in range(len(joint.labels)):
        for a in (0, 1):
            np.testing.assert_allclose(lam[:, joint.within_row[a, k]], arm_lam[:, a, k], rtol=1e-10)
        between = w_new * arm_lam[:, 1, k] - w_ref * arm_lam[:, 0, k]
        np.testing.assert_allclose(lam[:, joint.between_row[k]], between, rtol=1e-10, atol=1e-12)


def test_within_only_statements_correlate_across_cells(tmp_path):
    """A study with within-arm statements only, in two cells: the joint term is used and the error
    correlation across times exists (r_time), which the per-statement path never had."""
    rows = [_statement(t, "within", "<", arm="new_arm", direction="improvement") for t in (4, 8)]
    folder = write_study(tmp_path / "s", follow_up=(4.0, 8.0), rows={"thresholds.csv": rows})
    spec, _ = load_spec("default")
    inputs = prepare_inputs(load_study(folder), spec)
    model = build_model(inputs, spec, resolve_prior(spec, "weakly_informative", inputs))
    assert "r_time" in model.named_vars and "threshold_joint_likelihood" in model.named_vars
    independent = spec_variant(thresholds={"statement_dependence": "independent"})
    model = build_model(inputs, independent, resolve_prior(independent, "weakly_informative", inputs))
    assert "r_time" not in model.named_vars and "threshold_within_likelihood" in model.named_vars


def _cell_quantities(joint, design, change, r_time, r_out):
    """``threshold_arm_noncentrality`` and ``threshold_cell_corr`` of the joint term built on constants."""
    n_time, n_out = change.shape[1:]
    exchangeable = [(1 - r) * np.eye(n) + r for r, n in ((r_time, n_time), (r_out, n_out))]
    with pm.Model(coords={"arm": ["ref", "new"]}) as model:
        crit = pt.as_tensor(design["crit"].to_numpy(dtype=float))
        ratio = np.linspace(0.8, 1.2, n_out)
        correlations = [pt.as_tensor(r) for r in exchangeable]
        add_joint_statement_term(joint, design, pt.as_tensor(change), pt.as_tensor(ratio), crit, *correlations)
    lam, corr = pytensor.function([], [model["threshold_arm_noncentrality"], model["threshold_cell_corr"]])()
    return lam, corr, ratio, exchangeable


@pytest.mark.parametrize("cells", [[(0, 0), (0, 1), (1, 0), (1, 1)], [(0, 1), (1, 0)]], ids=["full grid", "subset"])
def test_cell_noncentralities_and_correlations_gather_each_cell(cells):
    """lambda_{a,k} = theta_{a,t_k,o_k} sqrt(n_a) / sigma_{o_k} and R_{k,l} = R_time[t_k, t_l] R_out[o_k, o_l],
    whether the cells cover every (time, outcome) (gathered by a reshape) or some (by indexing)."""
    sizes = np.array([15.0, 25.0])
    n_cells = len(cells)
    _, design = one_cell(sizes, ["inside", "below", "below"])
    design = pd.concat([design] * n_cells, ignore_index=True)
    rows = np.arange(3 * n_cells).reshape(n_cells, 3)
    joint = JointDesign(
        cells=np.array(cells),
        labels=[f"{t}|{o}" for t, o in cells],
        arms=["ref", "new"],
        sizes=sizes,
        within_row=rows[:, 1:].T.copy(),
        within_t=np.ones((2, n_cells), dtype=bool),
        between_row=rows[:, 0].copy(),
        pooling=np.tile([*(sizes - 1) / (sizes.sum() - 2), 0.0], (n_cells, 1)),
        has_sd=np.ones((2, n_cells), dtype=bool),
        grid=(2, 2),
    )
    assert joint.full_grid == (n_cells == 4)
    change = np.random.default_rng(7).standard_normal((2, 2, 2))
    lam, corr, ratio, (R_time, R_out) = _cell_quantities(joint, design, change, 0.3, 0.6)
    t_idx, o_idx = joint.cells.T
    want_lam = change[:, t_idx, o_idx] * np.sqrt(sizes)[:, None] / ratio[o_idx][None, :]
    np.testing.assert_allclose(lam, want_lam, rtol=1e-14)
    np.testing.assert_allclose(corr, R_time[np.ix_(t_idx, t_idx)] * R_out[np.ix_(o_idx, o_idx)], rtol=1e-14)
