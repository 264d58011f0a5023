"""Tests of the trial simulator: reproducibility, recovery of the truth, the derived evidence levels
(checked against scipy / statsmodels) and the study folders it writes."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from bayes_stenosis import __version__
from bayes_stenosis import simulation as sim
from bayes_stenosis.study import load_study

SEED = 20240611
Z = 4.0  # Monte Carlo tolerance in standard errors


def _wide(patients: pd.DataFrame, arm: str, truth: sim.TrialTruth) -> np.ndarray:
    """(patient, time, outcome) array built independently of the module's own helper."""
    sub = patients[patients.arm == arm].sort_values(["patient", "time", "outcome"])
    cube = sub.set_index(["patient", "time", "outcome"])["value"].unstack(["time", "outcome"])
    cube = cube[[(t, o) for t in truth.times for o in truth.outcome_names]]
    return cube.to_numpy().reshape(len(cube), len(truth.times), len(truth.outcomes))


@pytest.fixture(scope="module")
def big():
    """A large trial, continuous and unclipped, with a non-zero delta so both arms are checked."""
    sd = np.array([o.sd for o in sim.default_truth().outcomes])
    delta = np.array([[-0.3], [0.2]]) * sd  # (time, outcome)
    truth = sim.default_truth(n_per_arm=(20000, 20000), delta=delta)
    return truth, sim.simulate_patients(truth, seed=SEED)


# --------------------------------------------------------------------------------------------
# the truth
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# patients
# --------------------------------------------------------------------------------------------


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
        x = _wide(patients, arm, truth)
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


# --------------------------------------------------------------------------------------------
# derived evidence
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    truth = sim.default_truth(
        n_per_arm=(23, 19),
        delta=np.array([[-15.0, 0.0, 5.0, 0.0], [-20.0, 2.0, 0.0, 3.0]]),
        dropout=0.15,
    )
    return truth, sim.simulate_patients(truth, seed=7)


def test_summaries_match_pandas(small):
    truth, patients = small
    score = sim.summarise_arms(patients, truth, kind="score")
    assert len(score) == 2 * 4 * 3 and set(score.kind) == {"score"}
    g = patients.groupby(["arm", "outcome", "time"])["value"].agg(["count", "mean", "std"])
    for rec in score.to_dict("records"):
        ref = g.loc[(rec["arm"], rec["outcome"], rec["time"])]
        assert rec["n"] == ref["count"]
        assert rec["mean"] == pytest.approx(ref["mean"], rel=1e-12)
        assert rec["sd"] == pytest.approx(ref["std"], rel=1e-12)
    change = sim.summarise_arms(patients, truth, kind="change")
    assert len(change) == 2 * 4 * 2 and (change.time > 0).all()
    assert (change.source == "SIMULATED (seed 7)").all()
    assert change.n.max() <= 23 and change.n.min() < 19  # complete pairs only (dropout)


def test_change_t_contrast_matches_scipy(small):
    truth, patients = small
    con = sim.contrasts_from_patients(patients, truth, method="change_t", ci_level=0.9)
    assert len(con) == 8
    assert set(con.measure) == {"change"} and set(con.direction) == {"new_minus_reference"}
    for rec in con.to_dict("records"):
        j, k = truth.outcome_names.index(rec["outcome"]), truth.times.index(rec["time"])
        d = {}
        for arm in sim.ARMS:
            x = _wide(patients, arm, truth)
            dd = x[:, k, j] - x[:, 0, j]
            d[arm] = dd[~np.isnan(dd)]
        res = stats.ttest_ind(d["new_arm"], d["reference_arm"], equal_var=True)
        ci = res.confidence_interval(0.9)
        est = d["new_arm"].mean() - d["reference_arm"].mean()
        assert rec["estimate"] == pytest.approx(est, rel=1e-10)
        assert rec["p_value"] == pytest.approx(res.pvalue, rel=1e-10)
        assert rec["ci_low"] == pytest.approx(ci.low, rel=1e-10)
        assert rec["ci_high"] == pytest.approx(ci.high, rel=1e-10)
        assert rec["df"] == res.df == len(d["new_arm"]) + len(d["reference_arm"]) - 2
        assert rec["se"] == pytest.approx(est / res.statistic, rel=1e-10)
        assert rec["ci_level"] == 0.9


def test_ancova_contrast_matches_statsmodels(small):
    truth, patients = small
    con = sim.contrasts_from_patients(patients, truth, method="ancova")
    assert set(con.measure) == {"ancova"}
    for rec in con.to_dict("records"):
        j, k = truth.outcome_names.index(rec["outcome"]), truth.times.index(rec["time"])
        ys, bs, arm_new = [], [], []
        for arm in sim.ARMS:
            x = _wide(patients, arm, truth)
            ok = ~np.isnan(x[:, k, j])
            ys.append(x[ok, k, j])
            bs.append(x[ok, 0, j])
            arm_new.append(np.full(ok.sum(), float(arm == "new_arm")))
        design = sm.add_constant(np.column_stack([np.concatenate(arm_new), np.concatenate(bs)]))
        fit = sm.OLS(np.concatenate(ys), design).fit()
        assert rec["estimate"] == pytest.approx(fit.params[1], rel=1e-10)
        assert rec["se"] == pytest.approx(fit.bse[1], rel=1e-10)
        assert rec["p_value"] == pytest.approx(fit.pvalues[1], rel=1e-10)
        low, high = fit.conf_int(0.05)[1]
        assert rec["ci_low"] == pytest.approx(low, rel=1e-10)
        assert rec["ci_high"] == pytest.approx(high, rel=1e-10)
        assert rec["df"] == fit.df_resid


def test_thresholds_agree_with_p_values(small):
    truth, patients = small
    thr = sim.thresholds_from_patients(patients, truth, alpha=0.05)
    assert len(thr) == 8 * 3
    assert (thr[thr.comparison == "between"].test == "two_sample_t").all()
    assert (thr[thr.comparison == "within"].test == "paired_t").all()
    assert thr[thr.comparison == "between"].arm.isna().all()
    # both relations occur (the truth has large and zero deltas)
    assert set(thr[thr.comparison == "between"].relation) == {"<", ">"}
    for rec in thr.to_dict("records"):
        j, k = truth.outcome_names.index(rec["outcome"]), truth.times.index(rec["time"])
        if rec["comparison"] == "between":
            d = {}
            for arm in sim.ARMS:
                x = _wide(patients, arm, truth)
                dd = x[:, k, j] - x[:, 0, j]
                d[arm] = dd[~np.isnan(dd)]
            p = stats.ttest_ind(d["new_arm"], d["reference_arm"]).pvalue
            est = d["new_arm"].mean() - d["reference_arm"].mean()
            good, bad = "favours_new", "favours_reference"
        else:
            x = _wide(patients, rec["arm"], truth)
            ok = ~np.isnan(x[:, k, j])
            p = stats.ttest_rel(x[ok, k, j], x[ok, 0, j]).pvalue
            est = np.mean(x[ok, k, j] - x[ok, 0, j])
            good, bad = "improvement", "worsening"
        assert rec["p_value"] == pytest.approx(p, rel=1e-10)
        assert rec["relation"] == ("<" if p < 0.05 else ">")
        if rec["relation"] == "<":
            assert rec["direction"] == (good if est < 0 else bad)
        else:
            assert pd.isna(rec["direction"])


# --------------------------------------------------------------------------------------------
# study folders
# --------------------------------------------------------------------------------------------

EXPECTED_FILE = {
    "ipd": "ipd.csv",
    "arm_summary": "arm_summaries.csv",
    "arm_summary_change": "arm_summaries.csv",
    "contrast": "contrasts.csv",
    "threshold": "thresholds.csv",
}
EXPECTED_EVIDENCE = {**{lv: lv for lv in sim.LEVELS}, "arm_summary_change": "arm_summary"}


@pytest.fixture(scope="module")
def writable():
    """Questionnaire-like data (rounded, clipped to the scale) with some missed visits."""
    truth = sim.default_truth(round_to=1.0, clip=True, dropout=0.1, delta=-2.0)
    return truth, sim.simulate_patients(truth, seed=11)


@pytest.mark.parametrize("level", sim.LEVELS)
def test_write_study_each_level_loads(tmp_path, writable, level):
    truth, patients = writable
    folder = sim.write_study(tmp_path / level, truth, patients, levels=[level], seed=11)
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted(["study.toml", "truth.json", EXPECTED_FILE[level]])
    study = load_study(folder)
    assert study.simulated and study.id == "simulated"
    assert "SIMULATED trial (bayes_stenosis.simulation, seed 11)" in study.meta.study.title
    assert "SIMULATED" in study.meta.study.citation
    assert study.arms == ["reference_arm", "new_arm"]
    assert study.arm_sizes() == {"reference_arm": 20, "new_arm": 20}
    assert {a.n_source for a in study.meta.arms.values()} == {"simulated"}
    assert study.times == [4.0, 8.0] and study.outcomes == truth.outcome_names
    for o in truth.outcomes:
        spec = study.outcome(o.name)
        assert spec.direction == "lower_is_better"
        assert (spec.margin, spec.reference_sd) == (o.margin, o.sd)
        assert spec.margin_source == spec.reference_sd_source == "simulation truth"
        assert (spec.scale_min, spec.scale_max) == (o.scale_min, o.scale_max)
    by_cell = study.evidence_by_cell()
    assert set(by_cell.evidence) == {EXPECTED_EVIDENCE[level]} and len(by_cell) == 8
    frame = study.evidence[EXPECTED_EVIDENCE[level]]
    assert len(frame) > 0 and (frame.source == "SIMULATED (seed 11)").all()
    # truth.json beside it round-trips
    back, record = sim.read_truth(folder)
    assert back == truth
    assert record["seed"] == 11 and record["package_version"] == __version__
    assert record["level"] == level
    raw = json.loads((folder / "truth.json").read_text())
    assert raw["truth"] == truth.to_dict()


def test_written_numbers_are_the_functions_numbers(tmp_path, writable):
    truth, patients = writable
    folder = sim.write_study(tmp_path / "c", truth, patients, levels=["contrast"], seed=11)
    loaded = load_study(folder).evidence["contrast"]
    direct = sim.contrasts_from_patients(patients, truth)
    for col in ("estimate", "ci_low", "ci_high", "se", "p_value", "df"):
        np.testing.assert_array_equal(loaded[col].to_numpy(), direct[col].to_numpy())
    folder = sim.write_study(tmp_path / "i", truth, patients, levels=["ipd"], seed=11)
    ipd = load_study(folder).evidence["ipd"]
    np.testing.assert_array_equal(ipd.value.to_numpy(), patients.value.to_numpy())
    assert ipd.value.isna().sum() == patients.value.isna().sum() > 0
    folder = sim.write_study(tmp_path / "a", truth, patients, levels=["contrast"], seed=11, contrast_method="ancova")
    assert set(load_study(folder).evidence["contrast"].measure) == {"ancova"}


@pytest.mark.parametrize("pair", list(itertools.combinations(sim.LEVELS, 2)))
def test_write_study_refuses_double_counting(tmp_path, writable, pair):
    truth, patients = writable
    with pytest.raises(ValueError, match="one evidence level"):
        sim.write_study(tmp_path / "x", truth, patients, levels=list(pair), seed=11)
    assert not (tmp_path / "x").exists()


def test_write_study_refuses_bad_requests(tmp_path, writable):
    truth, patients = writable
    with pytest.raises(ValueError, match="one evidence level"):
        sim.write_study(tmp_path / "x", truth, patients, levels=[], seed=11)
    with pytest.raises(ValueError, match="one evidence level"):
        sim.write_study(tmp_path / "x", truth, patients, levels=["ipd", "ipd"], seed=11)
    with pytest.raises(ValueError, match="unknown evidence level"):
        sim.write_study(tmp_path / "x", truth, patients, levels=["abstract"], seed=11)
    with pytest.raises(ValueError, match="seed"):
        sim.write_study(tmp_path / "x", truth, patients, levels=["ipd"], seed=12)
    with pytest.raises(ValueError, match="study_id"):
        sim.write_study(tmp_path / "x", truth, patients, levels=["ipd"], seed=11, study_id="Sim-1")
    assert not (tmp_path / "x").exists()
    # unclipped scores fall off the scale: the loader would refuse them, so write_study does
    loose = sim.default_truth(n_per_arm=(200, 200))
    loose_patients = sim.simulate_patients(loose, seed=3)
    with pytest.raises(ValueError, match="clip=True"):
        sim.write_study(tmp_path / "x", loose, loose_patients, levels=["ipd"], seed=3)
    assert not (tmp_path / "x").exists()
    # ... but its arm summaries are fine
    sim.write_study(tmp_path / "y", loose, loose_patients, levels=["arm_summary"], seed=3)
    assert load_study(tmp_path / "y").simulated


def test_write_study_never_clobbers(tmp_path, writable):
    truth, patients = writable
    folder = sim.write_study(tmp_path / "s", truth, patients, levels=["contrast"], seed=11)
    with pytest.raises(FileExistsError):
        sim.write_study(folder, truth, patients, levels=["threshold"], seed=11)
    sim.write_study(folder, truth, patients, levels=["threshold"], seed=11, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == [
        "study.toml",
        "thresholds.csv",
        "truth.json",
    ]
    assert load_study(folder).levels_present() == ["threshold"]
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="did not write"):
        sim.write_study(folder, truth, patients, levels=["ipd"], seed=11, overwrite=True)
    assert (folder / "thresholds.csv").exists()
