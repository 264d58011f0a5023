"""The simulator's truth: validation, the analytic correlation structure, the dict round trip."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bayes_stenosis import simulation as sim


def test_default_truth_is_flagship_like():
    t = sim.default_truth()
    assert t.outcome_names == ["VAS", "ODI", "QBPDS", "RMDQ"]
    assert [o.sd for o in t.outcomes] == [20, 16, 20, 5]
    assert [o.rho for o in t.outcomes] == [0.3, 0.6, 0.6, 0.5]
    assert [o.margin for o in t.outcomes] == [15, 10, 15, 5]
    assert [(o.scale_min, o.scale_max) for o in t.outcomes] == [(0, 100)] * 3 + [(0, 24)]
    assert t.follow_up == (4.0, 8.0) and t.n_per_arm == (20, 20)
    sd = np.array([o.sd for o in t.outcomes])
    np.testing.assert_allclose(t.change_reference, np.vstack([-0.8 * sd, -1.0 * sd]))
    np.testing.assert_array_equal(t.delta, 0)
    c = t.outcome_corr
    assert c[1, 3] == 0.75 and c[0, 1] == c[0, 3] == 0.5
    assert c[2, 0] == c[2, 1] == c[2, 3] == 0.6
    assert not t.clip and t.round_to is None and t.dropout == 0
    # overrides
    t2 = sim.default_truth(n_per_arm=(15, 24), delta=-2.0, dropout=0.1)
    assert t2.n_per_arm == (15, 24) and t2.dropout == 0.1
    np.testing.assert_array_equal(t2.delta, -2.0)
    np.testing.assert_array_equal(t2.change("new_arm"), t2.change_reference - 2.0)


def test_truth_is_validated_and_immutable():
    t = sim.default_truth()
    with pytest.raises(ValueError):
        t.delta[0, 0] = 1.0  # read-only array
    with pytest.raises(ValueError, match="shape"):
        sim.default_truth(delta=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="n_per_arm"):
        sim.default_truth(n_per_arm=(1, 20))
    with pytest.raises(ValueError, match="dropout"):
        sim.default_truth(dropout=1.0)
    with pytest.raises(ValueError, match="instrument"):
        sim.OutcomeTruth("X", "SF36", 0, 100, 50, 10, 0.5, 5)
    with pytest.raises(ValueError, match="rho"):
        sim.OutcomeTruth("X", "other", 0, 100, 50, 10, 1.0, 5)
    # two outcomes almost collinear at every time but with very different rho: impossible
    outs = (
        sim.OutcomeTruth("A", "other", 0, 100, 50, 10, 0.9, 5),
        sim.OutcomeTruth("B", "other", 0, 100, 50, 10, 0.0, 5),
    )
    with pytest.raises(ValueError, match="positive semi-definite|exceeds 1"):
        sim.default_truth(outcomes=outs, outcome_corr=[[1, 0.99], [0.99, 1]], change_reference=0.0)


def test_analytic_correlation_structure():
    t = sim.default_truth()
    s = sim.score_correlation(t)
    n_o = len(t.outcomes)
    rho = np.array([o.rho for o in t.outcomes])
    np.testing.assert_allclose(np.diag(s), 1)
    for k in range(3):  # between outcomes at the same time = outcome_corr, at every time
        np.testing.assert_allclose(s[k * n_o : (k + 1) * n_o, k * n_o : (k + 1) * n_o], t.outcome_corr)
    for k in (1, 2):  # baseline-follow-up = rho
        np.testing.assert_allclose(np.diag(s[:n_o, k * n_o : (k + 1) * n_o]), rho)
    np.testing.assert_allclose(np.diag(s[n_o : 2 * n_o, 2 * n_o :]), rho**2 + t.time_corr * (1 - rho**2))
    assert np.linalg.eigvalsh(s).min() > 0
    sd = np.array([o.sd for o in t.outcomes])
    np.testing.assert_allclose(np.diag(sim.change_covariance(t)), np.tile(2 * sd**2 * (1 - rho), 2))


def test_truth_dict_round_trip():
    t = sim.default_truth(delta=-1.5, dropout=0.2, round_to=1.0, clip=True)
    d = json.loads(json.dumps(t.to_dict()))
    assert sim.TrialTruth.from_dict(d) == t
    assert sim.default_truth() != t
    # dataclasses.replace re-validates
    t3 = dataclasses.replace(t, delta=np.zeros((2, 4)))
    assert t3 == sim.default_truth(dropout=0.2, round_to=1.0, clip=True)
    with pytest.raises(ValueError, match="time_corr"):
        dataclasses.replace(t, time_corr=1.5)
