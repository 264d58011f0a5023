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
import pytest

from bayes_stenosis.calibration import CASES, MODES, run_case, wrong_data

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
