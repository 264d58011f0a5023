"""Simulation-based calibration: the quick SBC passes for the package's likelihoods and fails for a
deliberately wrong one (a standard error taken for a standard deviation).

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

from bayes_stenosis.calibration import sbc

ALPHA = 0.001
QUICK_CASES = ("contrast", "arm_summary_change")


@pytest.fixture(scope="module")
def quick_results():
    return {}


def _run(cache, name):
    if name not in cache:
        correct, wrong = sbc.run_case(
            sbc.CASES[name], sbc.MODES["quick"], seed=11, wrong=(None, "se_as_sd"), alpha=ALPHA
        )
        cache[name] = (correct, wrong)
        for res in (correct, wrong):
            print("\n" + res.text())
            print(res.tests[["quantity", "p_value", "counts"]].to_string(index=False))
    return cache[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", QUICK_CASES)
def test_quick_sbc_is_uniform_for_the_package_likelihood(quick_results, name):
    correct, _ = _run(quick_results, name)
    assert int(correct.tests["replicates"].min()) == sbc.MODES["quick"].replicates
    assert correct.passed, correct.text()


@pytest.mark.slow
@pytest.mark.parametrize("name", QUICK_CASES)
def test_quick_sbc_detects_a_standard_error_taken_for_a_standard_deviation(quick_results, name):
    _, wrong = _run(quick_results, name)
    assert not wrong.passed, wrong.text()
    # the failure is the expected one: too narrow a posterior puts the truth in the end bins of Delta
    counts = np.asarray(wrong.tests.set_index("quantity").filter(like="Delta", axis=0)["counts"].iloc[0])
    expected_end_share = 2 / sbc.MODES["quick"].bins
    assert (counts[0] + counts[-1]) / counts.sum() > expected_end_share


# --- fast checks of the pieces (no sampling) ---------------------------------------------------


def test_uniformity_test_bins_ranks_and_flags_a_u_shape():
    keep, bins = 49, 10
    uniform = pd.DataFrame({"quantity": "x", "rank": np.tile(np.arange(keep + 1), 4), "ess_bulk": 1000.0})
    result = sbc.uniformity(uniform, keep, bins)
    assert result["counts"].iloc[0] == [20] * bins
    assert result["p_value"].iloc[0] == pytest.approx(1.0)
    u_shape = pd.DataFrame({"quantity": "x", "rank": np.r_[np.zeros(40), np.full(40, keep)], "ess_bulk": 10.0})
    result = sbc.uniformity(u_shape, keep, bins)
    assert result["counts"].iloc[0][0] == 40 and result["counts"].iloc[0][-1] == 40
    assert result["p_value"].iloc[0] < 1e-20
    assert result["share_ess_below_L"].iloc[0] == 1.0
    with pytest.raises(ValueError, match="divisible"):
        sbc.uniformity(uniform, 50, bins)


def test_thinning_keeps_evenly_spaced_draws_over_pooled_chains():
    draws = np.arange(2 * 100).reshape(2, 100)
    kept = sbc.thin_draws(draws, 50)
    assert kept.shape == (50,)
    assert kept[0] == 0 and kept[-1] == 199
    assert np.all(np.diff(kept) > 0)


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
    out = sbc.wrong_data(values, Inputs(), "se_as_sd")
    assert out["contrast_se"][0] == pytest.approx(5.0 / np.sqrt(10.0))
    assert out["sd_change_new_arm_sq"][0] == pytest.approx(4.0 / 20.0)
    assert out["sd_baseline_new_arm_sq"][0] == pytest.approx(9.0 / 18.0)
    assert sbc.wrong_data(values, Inputs(), None) is values


def test_first_within_scale_keeps_the_first_draws_that_fit_and_counts_the_rest():
    from bayes_stenosis.calibration import first_within_scale

    # draws x (arm, outcome); widths 100 and 24, slack 2 on the second outcome only
    change = np.array(
        [
            [[-10.0, 5.0], [-12.0, 6.0]],  # fits
            [[-10.0, 23.0], [-12.0, 6.0]],  # 23 + 2 > 24: refused
            [[-101.0, 5.0], [-12.0, 6.0]],  # beyond 100: refused
            [[-99.0, -22.0], [-12.0, 6.0]],  # fits (22 + 2 = 24)
            [[0.0, 0.0], [0.0, 0.0]],  # fits, beyond the count asked for
        ]
    )
    keep, skipped = first_within_scale(change, np.array([100.0, 24.0]), 2, slack=np.array([0.0, 2.0]))
    assert keep.tolist() == [0, 3] and skipped == 2
    with pytest.raises(ValueError, match="only 3 of 5"):
        first_within_scale(change, np.array([100.0, 24.0]), 4, slack=np.array([0.0, 2.0]))


def test_change_score_correlation_matches_its_closed_form_and_simulated_patients():
    from bayes_stenosis import simulation as sim

    r = 0.75
    truth = sim.default_truth(
        outcomes=(sbc.ODI, sbc.RMDQ),
        outcome_corr=sbc.exchangeable_correlation(2, r),
        follow_up=(8.0,),
        change_reference=np.zeros((1, 2)),
        n_per_arm=(20_000, 20_000),
    )
    rho1, rho2 = sbc.ODI.rho, sbc.RMDQ.rho
    closed = r * (2 - rho1 - rho2) / (2 * np.sqrt((1 - rho1) * (1 - rho2)))
    assert sbc.change_score_correlation(truth)[0][1] == pytest.approx(closed, abs=1e-4)
    # empirical correlation of 40,000 patients' change scores: SE (1 - c^2) / sqrt(n) ~ 0.002
    wide = sim.simulate_patients(truth, seed=3).pivot_table(
        index="patient", columns=["outcome", "time"], values="value"
    )
    change = {o: wide[(o, 8.0)] - wide[(o, 0.0)] for o in ("ODI", "RMDQ")}
    empirical = np.corrcoef(change["ODI"], change["RMDQ"])[0, 1]
    assert abs(empirical - closed) < 4 * (1 - closed**2) / np.sqrt(40_000)


def test_coverage_summary_counts_each_time_x_outcome_cell_with_exact_intervals(tmp_path):
    from bayes_stenosis.calibration import binomial_interval

    rows = [
        {
            "trial": k,
            "time": t,
            "outcome": o,
            "covered": (k + j) % 3 != 0,
            "equivalent": k < 2,
            "max_rhat": 1.0,
            "divergences": int(k == 0),
        }
        for k in range(6)
        for j, (t, o) in enumerate([(4.0, "ODI"), (4.0, "RMDQ"), (8.0, "ODI")])
    ]
    summary = sbc.coverage_summary(rows, tmp_path, "prior", 6, 20, "ipd", 0.9, 0.0, "abc")
    assert list(summary["cells"]) == ["week 4 ODI", "week 4 RMDQ", "week 8 ODI"]
    cell = summary["cells"]["week 4 RMDQ"]  # covered when (k + 1) % 3 != 0: k = 0, 1, 3, 4
    assert cell["coverage"] == 4 / 6 and cell["coverage_ci95"] == binomial_interval(4, 6)
    assert cell["equivalent_declared"] == 2 / 6
    assert summary["overall_coverage"] == 12 / 18 and summary["divergent_trials"] == 1
    assert (tmp_path / "coverage_prior.json").exists() and (tmp_path / "coverage_prior_trials.csv").exists()


def test_trial_clustered_interval_counts_trials_not_cells():
    """Four identical cells per trial carry one trial's information; independent cells carry four."""
    rng = np.random.default_rng(11)
    trials, cells = 400, 4
    hit = rng.random(trials) < 0.9
    trial = pd.Series(np.repeat(np.arange(trials), cells))
    same = pd.Series(np.repeat(hit, cells))  # every cell of a trial covered or missed together
    lo, hi = sbc.trial_clustered_interval(trial, same)
    share = hit.mean()
    half = 1.959964 * np.sqrt(share * (1 - share) / (trials - 1))  # SE of a mean of 0/1, ddof=1
    assert (lo, hi) == pytest.approx((share - half, share + half), rel=1e-9)
    # independent cells: the clustered SE equals the binomial SE of all cells up to its sampling
    # error (a relative SE of about 1/sqrt(2 * trials) = 3.5 %; 5 of them allowed)
    indep = pd.Series(rng.random(trials * cells) < 0.9)
    lo, hi = sbc.trial_clustered_interval(trial, indep)
    m = indep.mean()
    binomial_half = 1.959964 * np.sqrt(m * (1 - m) / (trials * cells))
    assert (hi - lo) / 2 == pytest.approx(binomial_half, rel=5 / np.sqrt(2 * trials))


def test_merged_coverage_parts_equal_the_whole_run_and_refuse_conflicting_overlaps(tmp_path):
    rows = [
        {
            "trial": k,
            "time": 8.0,
            "outcome": o,
            "truth": 0.1 * k,
            "covered": (k + j) % 4 != 0,
            "equivalent": k % 2 == 0,
            "max_rhat": 1.0,
            "divergences": 0,
        }
        for k in range(10)
        for j, o in enumerate(["ODI", "RMDQ"])
    ]
    whole = sbc.coverage_summary(rows, tmp_path / "whole", "zero", 10, 20, "ipd", 0.9, 0.0, "abc")
    sbc.coverage_summary(rows[:12], tmp_path / "a", "zero", 10, 20, "ipd", 0.9, 0.0, "abc")  # trials 0-5
    sbc.coverage_summary(rows[8:], tmp_path / "b", "zero", 10, 20, "ipd", 0.9, 0.0, "abc")  # 4-9: 4, 5 twice
    merged = sbc.merge_coverage([tmp_path / "a", tmp_path / "b"], "zero", tmp_path / "m")
    assert merged["trials_done"] == 10 and merged["cells"] == whole["cells"]
    assert merged["overall_coverage_ci95_by_trial"] == whole["overall_coverage_ci95_by_trial"]
    conflicting = [dict(r, covered=not r["covered"]) if r["trial"] == 5 else r for r in rows[8:]]
    sbc.coverage_summary(conflicting, tmp_path / "c", "zero", 10, 20, "ipd", 0.9, 0.0, "abc")
    with pytest.raises(ValueError, match=r"trials \[5\] were fitted in two parts"):
        sbc.merge_coverage([tmp_path / "a", tmp_path / "c"], "zero", tmp_path / "m2")
