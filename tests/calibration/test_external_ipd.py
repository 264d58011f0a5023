"""The external patient-level simulator (independent of the model's generative form)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_stenosis.calibration.external_ipd import PROCESSES, simulate_external, true_delta, write_external_study
from bayes_stenosis.stats.repeated_measures import ancova_ols
from bayes_stenosis.study import load_study


@pytest.mark.parametrize("process", PROCESSES)
def test_external_simulator_ols_is_unbiased_for_its_true_delta(process):
    """Per-cell OLS ANCOVA over 60 trials of 100 per arm: the mean error of every cell within 4 of its
    Monte Carlo standard errors of the true delta (a check of the simulator's ``true_delta``)."""
    truth = true_delta(process)
    est = np.array([ancova_ols(*_arrays(simulate_external(process, 100, seed=s))).estimate for s in range(60)])
    err = est - truth
    mcse = err.std(axis=0, ddof=1) / np.sqrt(len(err))
    assert np.all(np.abs(err.mean(axis=0)) < 4 * mcse)


def _arrays(trial):
    return trial.arm, trial.baseline, trial.followup


def test_same_seed_same_trial_and_the_folder_reads_back(tmp_path):
    a, b = simulate_external("baseline_dropout", 10, seed=4), simulate_external("baseline_dropout", 10, seed=4)
    np.testing.assert_array_equal(a.followup, b.followup)
    study = load_study(write_external_study(tmp_path / "s", a))
    df = study.evidence["ipd"]
    assert len(df) == 20 * 4 * 3
    assert df["value"].isna().sum() == np.isnan(a.followup).sum()
