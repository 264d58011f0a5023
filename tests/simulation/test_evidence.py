"""Evidence derived from simulated patients, checked against pandas, scipy and statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from bayes_stenosis import simulation as sim
from bayes_stenosis.testing import wide_scores


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
            x = wide_scores(patients, arm, truth)
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
            x = wide_scores(patients, arm, truth)
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
                x = wide_scores(patients, arm, truth)
                dd = x[:, k, j] - x[:, 0, j]
                d[arm] = dd[~np.isnan(dd)]
            p = stats.ttest_ind(d["new_arm"], d["reference_arm"]).pvalue
            est = d["new_arm"].mean() - d["reference_arm"].mean()
            good, bad = "favours_new", "favours_reference"
        else:
            x = wide_scores(patients, rec["arm"], truth)
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
