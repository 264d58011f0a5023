"""Simulation-based calibration: the quick SBC passes for the package's likelihoods and fails for a
deliberately wrong one (a standard error taken for a standard deviation); the flagship's 24 threshold
statements: the replicates' statements follow the fitted likelihood, and a smoke run of its SBC
(one compile, ranks recorded, a flipped direction convention detected).

Test size, not magic numbers: each case applies Pearson's chi-square to the binned ranks of every
ranked quantity and rejects when some p-value is below 0.001 / K (Bonferroni over its K quantities),
so a correctly calibrated case fails with probability at most 0.001. The wrong likelihood makes the
posterior ~3-4x too narrow (sqrt(n) with n = 20 per arm): ranks pile up in the end bins and the
chi-square p-values are far below the level (measured ~1e-30 with 100 replicates).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_stenosis.calibration import (
    CASES,
    MODES,
    Mode,
    case_template,
    pattern_counts,
    pattern_label,
    run_case,
    simulate_replicates,
    wrong_data,
)
from bayes_stenosis.model import (
    EVENT_KIND_CODES,
    chi_nodes,
    prepare_inputs,
    simulate_study_statement_statistics,
    statement_reproduced,
    threshold_design,
)
from bayes_stenosis.spec import load_spec
from bayes_stenosis.study import load_study

# one worker runs this module: its module-scoped fixture is costly (pytest -n 2 --dist loadgroup)
pytestmark = pytest.mark.xdist_group("sbc_quick")

ALPHA = 0.001
QUICK_CASES = ("contrast", "arm_summary_change")


@pytest.fixture(scope="module")
def quick_results():
    return {}


def _run(cache, name):
    if name not in cache:
        correct, wrong = run_case(CASES[name], MODES["quick"], seed=11, wrong=(None, "se_as_sd"), alpha=ALPHA)
        cache[name] = (correct, wrong)
        for res in (correct, wrong):
            print("\n" + res.text())
            print(res.tests[["quantity", "p_value", "counts"]].to_string(index=False))
    return cache[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", QUICK_CASES)
def test_quick_sbc_is_uniform_for_the_package_likelihood(quick_results, name):
    correct, _ = _run(quick_results, name)
    assert int(correct.tests["replicates"].min()) == MODES["quick"].replicates
    assert correct.passed, correct.text()


@pytest.mark.slow
@pytest.mark.parametrize("name", QUICK_CASES)
def test_quick_sbc_detects_a_standard_error_taken_for_a_standard_deviation(quick_results, name):
    _, wrong = _run(quick_results, name)
    assert not wrong.passed, wrong.text()
    # the failure is the expected one: too narrow a posterior puts the truth in the end bins of Delta
    counts = np.asarray(wrong.tests.set_index("quantity").filter(like="Delta", axis=0)["counts"].iloc[0])
    expected_end_share = 2 / MODES["quick"].bins
    assert (counts[0] + counts[-1]) / counts.sum() > expected_end_share


# --- fast checks of the pieces (no sampling) ---------------------------------------------------


def test_wrong_variant_shrinks_the_standard_errors_by_root_n():
    class Inputs:
        arm_sizes = {"reference_arm": 20.0, "new_arm": 20.0}

    values = {
        "contrast_se": np.array([5.0]),
        "sd_change_new_arm_sq": np.array([4.0]),
        "n_new_arm": np.array([20.0]),
        "sd_baseline_new_arm_sq": np.array([9.0]),
        "n_baseline_new_arm": np.array([18.0]),
    }
    out = wrong_data(values, Inputs(), "se_as_sd")
    assert out["contrast_se"][0] == pytest.approx(5.0 / np.sqrt(10.0))
    assert out["sd_change_new_arm_sq"][0] == pytest.approx(4.0 / 20.0)
    assert out["sd_baseline_new_arm_sq"][0] == pytest.approx(9.0 / 18.0)
    assert wrong_data(values, Inputs(), None) is values


def test_direction_flipped_swaps_the_sides_of_the_significant_statements():
    codes = EVENT_KIND_CODES
    kinds = np.array([codes["inside"], codes["below"], codes["above"], codes["below"]])
    out = wrong_data({"threshold_kind": kinds, "threshold_crit": np.ones(4)}, None, "direction_flipped")
    np.testing.assert_array_equal(
        out["threshold_kind"], [codes["inside"], codes["above"], codes["below"], codes["above"]]
    )
    np.testing.assert_array_equal(out["threshold_crit"], np.ones(4))
    with pytest.raises(ValueError, match="kinds_as_data"):
        wrong_data({"contrast_se": np.ones(1)}, None, "direction_flipped")
    with pytest.raises(ValueError, match="unknown"):
        wrong_data({}, None, "no_such_variant")


def test_event_patterns_are_labelled_and_counted():
    design = pd.DataFrame({"comparison": ["between", "within", "within", "within"], "kind": ["inside", *["below"] * 3]})
    patterns = [("inside", "below", "below", "below"), ("below", "inside", "above", "below")] * 2
    counts = pattern_counts(patterns, design)
    assert counts["between inside"] == 2 and counts["between below"] == 2
    assert counts["within below"] == 8 and counts["within inside"] == 2 and counts["within above"] == 2
    assert counts["distinct patterns"] == 2 and counts["template pattern"] == 2
    assert pattern_label(patterns[1]) == "biab"
    assert pattern_label(("inside", "above")) == "inside/above"
    assert pattern_counts([("inside",), ("above",), ("inside",)], design.iloc[:1]) == {"inside": 2, "above": 1}


# --- the flagship's full threshold design ----------------------------------------------------------

FLAGSHIP = CASES["threshold_flagship"]


def test_flagship_template_is_the_flagship_design(tmp_path):
    """4 outcomes with the flagship's instruments, margins and reference SDs, weeks 4 and 8, 39 patients
    split equally, 8 between-arm "P>0.05" and 16 within-arm "P<0.05, improvement" statements."""
    spec = FLAGSHIP.spec(load_spec()[0])
    assert spec.thresholds.kinds_as_data and not load_spec()[0].thresholds.kinds_as_data
    study = load_study(case_template(FLAGSHIP, tmp_path / "template", seed=1))
    bundled = load_study("farpour2022")
    assert study.meta == bundled.meta
    inputs = prepare_inputs(study, spec)
    assert inputs.coords["outcome"] == ["VAS", "ODI", "QBPDS", "RMDQ"]
    assert [float(t) for t in inputs.coords["time"]] == [4.0, 8.0]
    assert list(inputs.arm_sizes.values()) == [19.5, 19.5]
    design = threshold_design(inputs, spec)
    between = design[design["comparison"] == "between"]
    within = design[design["comparison"] == "within"]
    assert len(between) == 8 and (between["kind"] == "inside").all()
    assert len(within) == 16 and (within["kind"] == "below").all()  # lower is better: improvement = T < -c
    assert within.groupby("arm_index").size().to_dict() == {0: 8, 1: 8}


def _event_probability(kind: str, crit: float, df: float, lam: np.ndarray) -> np.ndarray:
    """P(event | lambda) for T noncentral t(df, lambda), by the chi quadrature of the likelihood."""
    nodes, log_w = chi_nodes(df, 32)
    weights = np.exp(log_w)[None, :]

    def cdf(x):
        return (weights * stats.norm.cdf(x * nodes[None, :] - lam[:, None])).sum(axis=1)

    return {"inside": cdf(crit) - cdf(-crit), "below": cdf(-crit), "above": 1 - cdf(crit)}[kind]


def test_flagship_replicate_statements_follow_the_fitted_likelihood(tmp_path):
    """The SBC's simulated statements (4,000 prior draws) against the likelihood the fit uses:

    - each statement reproduces its template kind as often as the prior-averaged quadrature probability
      of that kind given the draw's noncentrality (within 4 binomial SEs; a row-order or sign mix-up
      between the simulation and the fitted design fails this): the joint simulation keeps every
      statement's marginal;
    - every statement is simulated jointly (the default ``statement_dependence = "joint"``): "all P>0.05"
      between arms and "all P<0.05" within arms are each far more frequent than the products of their
      marginals (the statistics share patients: positive correlation across cells);
    - the replicates fit the kinds as data: one compile key, ``threshold_kind`` = the pattern's codes.
    """
    n = 4000
    template = case_template(FLAGSHIP, tmp_path / "template", seed=1)
    reps = simulate_replicates(FLAGSHIP, Mode(n, 2, 10, 10, 9, 5), load_spec()[0], template, seed=5)
    spec = FLAGSHIP.spec(load_spec()[0])
    design = threshold_design(reps.inputs, spec)
    kinds = np.array(reps.patterns)
    assert kinds.shape == (n, 24)
    lam = reps.draws["threshold_noncentrality"]
    assert reps.draws["threshold_cell_corr"].shape == (n, 8, 8)
    assert reps.draws["threshold_arm_noncentrality"].shape == (n, 2, 8)
    rows = list(design.itertuples())
    prob = np.column_stack([_event_probability(r.kind, r.crit, r.df, lam[:, k]) for k, r in enumerate(rows)])
    share = (kinds == design["kind"].to_numpy()).mean(axis=0)
    expected = prob.mean(axis=0)
    se = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(share - expected) < 4 * se), np.round((share - expected) / se, 2)

    between = (design["comparison"] == "between").to_numpy()
    joint = (kinds[:, between] == "inside").all(axis=1).mean()
    independent = np.prod(prob[:, between], axis=1).mean()
    assert joint - independent > 5 * np.sqrt(joint * (1 - joint) / n), (joint, independent)
    # the within-arm statements' dependence is weaker under the prior (their noncentralities vary most):
    # 25 more replicates of the same draws measure it (the product of marginals is exact per draw)
    more = simulate_study_statement_statistics(reps.draws, reps.inputs, spec, np.random.default_rng(6), 25)
    joint_within = statement_reproduced(more, design)[..., ~between].all(axis=-1).mean()
    independent_within = np.prod(prob[:, ~between], axis=1).mean()
    sd_within = np.sqrt(joint_within * (1 - joint_within) / (25 * n))
    assert joint_within - independent_within > 5 * sd_within, (joint_within, independent_within)

    assert reps.kinds_as_data and {reps.compile_key(r) for r in range(n)} == {()}
    codes = reps.data(7, None)["threshold_kind"]
    np.testing.assert_array_equal(codes, [EVENT_KIND_CODES[k] for k in reps.patterns[7]])


# the smoke run: a handful of short fits; L + 1 = 20 ranks in 5 bins
FLAGSHIP_SMOKE = Mode(replicates=4, chains=2, draws=100, tune=150, thin_to=19, bins=5)


@pytest.mark.slow
def test_flagship_sbc_smoke_run_ranks_every_quantity_and_detects_a_flipped_direction():
    """Four replicates of the flagship SBC, the package likelihood and the flipped direction convention.

    The machinery: one compile serves every event pattern; every replicate ranks every element of every
    ranked quantity (56 scalars) within 0..L. The wrong variant: with the sides of the "P<0.05" statements
    swapped, the posterior of each statement's noncentrality lies on the wrong side of zero, so its truth
    falls outside all L kept draws (rank 0 or L) far more often than the 2 / (L + 1) = 0.1 of a correct
    posterior (measured: 0.06 correct vs 0.82 flipped with 6 replicates, seed 3).
    """
    mode = FLAGSHIP_SMOKE
    correct, wrong = run_case(FLAGSHIP, mode, seed=3, wrong=(None, "direction_flipped"))
    for res in (correct, wrong):
        print("\n" + res.text(), f"compiles {res.compiles}, divergent fits {res.divergent_fits}", res.patterns)
    assert correct.compiles == wrong.compiles == 1
    assert correct.patterns["distinct patterns"] > 1  # one compile served several event patterns
    assert sum(v for k, v in correct.patterns.items() if k.startswith("between ")) == 8 * mode.replicates
    assert sum(v for k, v in correct.patterns.items() if k.startswith("within ")) == 16 * mode.replicates
    tests = correct.tests.set_index("quantity")
    assert len(tests) == 56 and (tests["replicates"] == mode.replicates).all()
    for label in ("Delta[4.0]", "delta[8.0,QBPDS]", "rho[VAS]", "change_sd_ratio[RMDQ]", "tau", "r_outcome"):
        assert label in tests.index
    assert correct.ranks["rank"].between(0, mode.thin_to).all()
    assert correct.ranks["pattern"].str.len().eq(24).all()

    def outside_share(res):
        ranks = res.ranks[res.ranks["quantity"].str.startswith("threshold_noncentrality")]["rank"]
        return float(ranks.isin([0, mode.thin_to]).mean())

    print(f"truth outside all kept draws: {outside_share(correct):.2f} correct, {outside_share(wrong):.2f} flipped")
    assert outside_share(correct) < 0.25, outside_share(correct)
    assert outside_share(wrong) > 0.5, outside_share(wrong)


# a quick SBC of the flagship design under the joint statement likelihood: 30 short fits, L + 1 = 20 ranks in
# 4 bins; the 200-replicate run is validation/sbc_threshold_joint (VALIDATION.md section 3)
FLAGSHIP_QUICK = Mode(replicates=30, chains=2, draws=100, tune=150, thin_to=19, bins=4)


@pytest.mark.slow
def test_flagship_quick_sbc_with_every_statement_joint():
    """30 replicates of the flagship's 24 statements, simulated and fitted as one joint event (the default
    ``statement_dependence``): the ranks of all 56 quantities pass the uniformity test (Pearson chi-square
    per quantity, Bonferroni at 0.001, so a calibrated model fails with probability <= 0.001). It detects
    gross errors only (a wrong sign, a missing term); the 200-replicate run is the release check."""
    assert load_spec()[0].thresholds.statement_dependence == "joint"
    (res,) = run_case(FLAGSHIP, FLAGSHIP_QUICK, seed=21)
    print("\n" + res.text(), f"compiles {res.compiles}, divergent fits {res.divergent_fits}, {res.seconds:.0f} s")
    print(res.tests[["quantity", "p_value", "counts"]].sort_values("p_value").head(8).to_string(index=False))
    assert res.compiles == 1 and (res.tests["replicates"] == FLAGSHIP_QUICK.replicates).all()
    assert res.passed, res.text()
