"""Simulated patients: reproducibility, common random numbers and recovery of the truth in a large trial."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bayes_stenosis import simulation as sim
from bayes_stenosis.testing import wide_scores

SEED = 20240611
Z = 4.0  # Monte Carlo tolerance in standard errors


@pytest.fixture(scope="module")
def big():
    """A large trial, continuous and unclipped, with a non-zero delta so both arms are checked."""
    sd = np.array([o.sd for o in sim.default_truth().outcomes])
    delta = np.array([[-0.3], [0.2]]) * sd  # (time, outcome)
    truth = sim.default_truth(n_per_arm=(20000, 20000), delta=delta)
    return truth, sim.simulate_patients(truth, seed=SEED)


def test_same_seed_same_frame_other_seed_differs():
    t = sim.default_truth(dropout=0.2, round_to=1.0, clip=True)
    a = sim.simulate_patients(t, seed=1)
    b = sim.simulate_patients(t, seed=1)
    c = sim.simulate_patients(t, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a["value"].equals(c["value"])
    assert list(a.columns) == ["patient", "arm", "outcome", "time", "value"]
    assert len(a) == 40 * 4 * 3
    assert set(a.arm) == {"reference_arm", "new_arm"}
    assert a.groupby("arm")["patient"].nunique().to_dict() == {"new_arm": 20, "reference_arm": 20}
    assert sorted(a.time.unique()) == [0.0, 4.0, 8.0]
    assert a.attrs["seed"] == 1


def test_common_random_numbers_across_scenarios():
    """delta moves the new arm by exactly delta and leaves the reference arm untouched."""
    t0 = sim.default_truth()
    t1 = sim.default_truth(delta=-3.0)
    p0 = sim.simulate_patients(t0, seed=5)
    p1 = sim.simulate_patients(t1, seed=5)
    ref = p0.arm == "reference_arm"
    np.testing.assert_array_equal(p0.value[ref], p1.value[ref])
    follow_new = (~ref) & (p0.time > 0)
    np.testing.assert_allclose(p1.value[follow_new] - p0.value[follow_new], -3.0, atol=1e-9)
    np.testing.assert_array_equal(p0.value[(~ref) & (p0.time == 0)], p1.value[(~ref) & (p1.time == 0)])


def test_large_trial_recovers_means_sds_and_correlations(big):
    truth, patients = big
    n_o = len(truth.outcomes)
    sd = np.array([o.sd for o in truth.outcomes])
    mu = np.array([o.baseline_mean for o in truth.outcomes])
    change_sd = np.sqrt(np.diag(sim.change_covariance(truth))).reshape(len(truth.follow_up), n_o)
    target_corr = sim.score_correlation(truth)
    for arm in sim.ARMS:
        x = wide_scores(patients, arm, truth)
        n = x.shape[0]
        assert n == 20000 and not np.isnan(x).any()
        # baseline means
        assert np.all(np.abs(x[:, 0].mean(0) - mu) < Z * sd / math.sqrt(n))
        # mean change = change_reference (+ delta)
        change = x[:, 1:] - x[:, :1]
        err = change.mean(0) - truth.change(arm)
        assert np.all(np.abs(err) < Z * change_sd / math.sqrt(n)), err / (change_sd / math.sqrt(n))
        # change SD
        assert np.all(np.abs(change.std(0, ddof=1) - change_sd) < Z * change_sd / math.sqrt(2 * (n - 1)))
        # SD of the score at every time = sd
        s = x.std(0, ddof=1)
        assert np.all(np.abs(s - sd) < Z * sd / math.sqrt(2 * (n - 1))), s
        # every correlation: baseline-follow-up (rho), between outcomes (outcome_corr), over time
        r = np.corrcoef(x.reshape(n, -1), rowvar=False)
        mcse = (1 - target_corr**2) / math.sqrt(n)
        off = ~np.eye(len(r), dtype=bool)
        assert np.all(np.abs(r - target_corr)[off] < Z * mcse[off] + 1e-12)
        for k in (1, 2):
            rho_hat = np.diag(r[:n_o, k * n_o : (k + 1) * n_o])
            rho = np.array([o.rho for o in truth.outcomes])
            assert np.all(np.abs(rho_hat - rho) < Z * (1 - rho**2) / math.sqrt(n))
        for k in range(3):
            block = r[k * n_o : (k + 1) * n_o, k * n_o : (k + 1) * n_o]
            tol = Z * (1 - truth.outcome_corr**2) / math.sqrt(n) + 1e-12
            assert np.all(np.abs(block - truth.outcome_corr) <= tol)


def test_rounding_and_clipping_match_expected_scores():
    truth = sim.default_truth(n_per_arm=(20000, 20000), round_to=1.0, clip=True, delta=-4.0)
    patients = sim.simulate_patients(truth, seed=SEED)
    v = patients.value
    assert np.all(v == np.round(v))
    for o in truth.outcomes:
        vals = v[patients.outcome == o.name]
        assert vals.min() >= o.scale_min and vals.max() <= o.scale_max
        assert vals.min() == o.scale_min  # the floor is hit: clipping is active
    exp = sim.expected_scores(truth)
    summ = sim.summarise_arms(patients, truth, kind="change")
    merged = summ.merge(exp, on=["arm", "outcome", "time"])
    assert len(merged) == 2 * 2 * 4
    mcse = merged["sd"] / np.sqrt(merged["n"])
    assert np.all(np.abs(merged["mean"] - merged["change"]) < Z * mcse)
    # ... and clipping does bias the change away from the truth (by more than MC error somewhere)
    assert np.any(np.abs(merged["mean"] - merged["change_truth"]) > Z * mcse)
    # without rounding and clipping the expectation is the truth itself
    plain = sim.expected_scores(sim.default_truth(delta=-4.0)).dropna()
    np.testing.assert_array_equal(plain["change"].to_numpy(), plain["change_truth"].to_numpy())


def test_dropout_rate_and_pattern():
    p_drop = 0.3
    truth = sim.default_truth(n_per_arm=(1500, 2500), dropout=p_drop)
    patients = sim.simulate_patients(truth, seed=SEED)
    assert not patients[patients.time == 0].value.isna().any()  # baselines never missing
    follow = patients[patients.time > 0]
    per_visit = follow.groupby(["patient", "time"])["value"].apply(lambda s: s.isna().sum())
    assert set(per_visit.unique()) <= {0, len(truth.outcomes)}  # a missed visit misses everything
    missed = per_visit > 0
    n_units = len(missed)
    assert n_units == 4000 * 2
    se = math.sqrt(p_drop * (1 - p_drop) / n_units)
    assert abs(missed.mean() - p_drop) < Z * se
    assert not sim.simulate_patients(sim.default_truth(), seed=SEED).value.isna().any()
