"""Frequentist reproduction: summary-statistic tests against scipy/statsmodels on raw simulated data,
rounding tolerances, SD/SE mix-ups detected, bundled studies tabulated with a reason per row."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.weightstats import ttost_ind, ttost_paired
from typer.testing import CliRunner

from bayes_stenosis.analyses import (
    decimals,
    one_sample,
    reproduce_table,
    tost,
    two_sample,
)
from bayes_stenosis.cli import app
from bayes_stenosis.resources import bundled_study_ids
from bayes_stenosis.spec import load_spec
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import write_study

runner = CliRunner()
SPEC, _ = load_spec("default")


def _patients(seed, n_new=23, n_ref=17, shift=-3.0, sd_new=14.0, sd_ref=10.0):
    rng = np.random.default_rng(seed)
    return rng.normal(-10 + shift, sd_new, n_new), rng.normal(-10, sd_ref, n_ref)


def _stats(x):
    return float(np.mean(x)), float(np.std(x, ddof=1)), len(x)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    ("test", "equal_var", "usevar"), [("two_sample_t", True, "pooled"), ("welch_t", False, "unequal")]
)
def test_two_sample_and_tost_from_summaries_equal_scipy_and_statsmodels_on_raw_data(seed, test, equal_var, usevar):
    x_new, x_ref = _patients(seed)
    mn, sn, nn = _stats(x_new)
    mr, sr, nr = _stats(x_ref)
    ours = two_sample(mn, sn, nn, mr, sr, nr, test=test)
    ref = stats.ttest_ind(x_new, x_ref, equal_var=equal_var)
    assert ours["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
    assert ours["p"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert ours["df"] == pytest.approx(ref.df, rel=1e-10)
    from_stats = stats.ttest_ind_from_stats(mn, sn, nn, mr, sr, nr, equal_var=equal_var)
    assert ours["p"] == pytest.approx(from_stats.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (ours["ci_low"], ours["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
    for margin in (2.0, 5.0, 12.0):
        sm_p, _, _ = ttost_ind(x_new, x_ref, -margin, margin, usevar=usevar)
        assert tost(ours["estimate"], ours["se"], ours["df"], margin) == pytest.approx(sm_p, rel=1e-9)


@pytest.mark.parametrize("seed", [4, 5])
def test_paired_t_on_the_change_equals_scipy_paired_and_statsmodels_tost(seed):
    rng = np.random.default_rng(seed)
    base = rng.normal(50, 15, 21)
    follow = base + rng.normal(-4, 9, 21)
    change = follow - base
    ours = one_sample(*_stats(change), test="paired_t")
    ref = stats.ttest_rel(follow, base)
    assert ours["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
    assert ours["p"] == pytest.approx(ref.pvalue, rel=1e-9)
    sm_p, _, _ = ttost_paired(follow, base, -6.0, 6.0)
    assert tost(ours["estimate"], ours["se"], ours["df"], 6.0) == pytest.approx(sm_p, rel=1e-9)


def test_decimals_of_entered_numbers():
    assert decimals(7.8) == 1
    assert decimals(12.0) == 0
    assert decimals(0.4382) == 4
    assert decimals(1e-5) == 5


def _change_rows(x_new, x_ref, sd_transform=lambda sd, n: sd, digits=None):
    rows = []
    for arm, x in (("new_arm", x_new), ("reference_arm", x_ref)):
        m, s, n = _stats(x)
        if digits is not None:
            m, s = round(m, digits), round(s, digits)
        rows.append(
            {"arm": arm, "outcome": "ODI", "time": 4, "kind": "change", "n": n, "mean": m, "sd": sd_transform(s, n)}
        )
    return rows


def _threshold(p, alpha=0.05, test="two_sample_t"):
    return {
        "outcome": "ODI",
        "time": 4,
        "comparison": "between",
        "relation": ">" if p > alpha else "<",
        "alpha": alpha,
        "direction": "" if p > alpha else "favours_new",
        "test": test,
        "p_value": p,
    }


def test_published_exact_p_is_consistent_and_an_se_entered_as_sd_is_caught(tmp_path):
    x_new, x_ref = _patients(11, n_new=20, n_ref=20, shift=-2.0, sd_new=12, sd_ref=12)
    true_p = stats.ttest_ind(x_new, x_ref).pvalue
    assert true_p > 0.05  # the design of this check: a "P>0.05" trial
    published = round(true_p, 3)
    good = write_study(
        tmp_path / "good",
        rows={"arm_summaries.csv": _change_rows(x_new, x_ref, digits=1), "thresholds.csv": [_threshold(published)]},
    )
    table = reproduce_table(load_study(good), SPEC)
    row = table[(table.kind == "recomputed") & (table.test == "two_sample_t on change") & (table.published != "")]
    assert len(row) == 1 and row.iloc[0]["status"] == "consistent"
    assert row.iloc[0]["recomputed_p_low"] <= published <= row.iloc[0]["recomputed_p_high"]
    # the same table with SEs typed into the SD column: the recomputed test is far stronger
    bad = write_study(
        tmp_path / "bad",
        rows={
            "arm_summaries.csv": _change_rows(
                x_new, x_ref, sd_transform=lambda s, n: round(s / math.sqrt(n), 2), digits=1
            ),
            "thresholds.csv": [_threshold(published)],
        },
    )
    table = reproduce_table(load_study(bad), SPEC)
    row = table[(table.kind == "recomputed") & (table.test == "two_sample_t on change") & (table.published != "")]
    assert row.iloc[0]["status"] == "inconsistent"
    assert "SD vs SE" in row.iloc[0]["note"]


def test_a_p_that_does_not_follow_from_the_printed_ci_is_inconsistent(tmp_path):
    def study(p, name):
        # estimate -1.0, 95% CI -2.1 to 0.1 (normal): SE 0.5612, p = 0.0746
        rec = {
            "outcome": "ODI",
            "time": 4,
            "measure": "change",
            "direction": "new_minus_reference",
            "estimate": -1.0,
            "ci_low": -2.1,
            "ci_high": 0.1,
            "ci_level": 0.95,
            "p_value": p,
        }
        return reproduce_table(load_study(write_study(tmp_path / name, rows={"contrasts.csv": [rec]})), SPEC)

    se = 2.2 / (2 * stats.norm.ppf(0.975))
    exact = 2 * stats.norm.sf(1.0 / se)
    ok = study(round(exact, 3), "ok")
    assert ok.iloc[0]["status"] == "consistent"
    assert ok.iloc[0]["recomputed_p"] == pytest.approx(exact, rel=1e-12)
    assert ok.iloc[0]["tost_p"] == pytest.approx(tost(-1.0, se, math.inf, 10.0), rel=1e-12)
    assert study(0.02, "wrong").iloc[0]["status"] == "inconsistent"


def test_threshold_only_rows_show_the_bounds_under_assumed_sds():
    study = load_study("farpour2022")
    table = reproduce_table(study, SPEC)
    assert len(table) == len(study.evidence["threshold"])
    assert (table["status"] == "not recomputable").all()
    assert table["note"].str.contains("no means or SDs").all()
    assert table["basis"].str.startswith("ASSUMED").all()
    odi = table[(table.outcome == "ODI") & (table.comparison == "between") & (table.time == 4)].iloc[0]
    rho = SPEC.correlation.ODI.mean
    se = 16 * math.sqrt(2 * (1 - rho)) * math.sqrt(2 / 19.5)
    assert odi["max_abs_difference_if_p_above_alpha"] == pytest.approx(stats.t.ppf(0.975, 37) * se, rel=1e-12)
    assert odi["max_abs_difference_for_tost_equivalence"] == pytest.approx(10 - stats.t.ppf(0.95, 37) * se, rel=1e-12)
    # "P>0.05" admits differences that TOST at the margin would not call equivalent
    assert odi["max_abs_difference_if_p_above_alpha"] > odi["max_abs_difference_for_tost_equivalence"]


def test_every_bundled_study_gives_a_table_with_a_status_per_row():
    for study_id in bundled_study_ids():
        study = load_study(study_id)
        table = reproduce_table(study, SPEC)
        assert set(table["status"]) <= {"consistent", "inconsistent", "not recomputable", "no published value"}
        unexplained = table[(table["status"] != "consistent") & (table["note"].fillna("") == "")]
        assert unexplained.empty, f"{study_id}: rows without a reason"
    pod = reproduce_table(load_study("podichetty2004"), SPEC)
    arith = pod[pod.kind == "arithmetic"].iloc[0]
    assert arith["status"] == "consistent" and arith["estimate"] == pytest.approx(-0.5)


def test_cli_writes_the_folder_and_refuses_to_overwrite(tmp_path):
    result = runner.invoke(app, ["reproduce", "tafazal2007", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "tafazal2007" / "reproduce"
    table = pd.read_csv(folder / "reproduce.csv")
    assert len(table) == 2 and (folder / "reproduce.md").read_text().startswith("# tafazal2007")
    again = runner.invoke(app, ["reproduce", "tafazal2007", "--out", str(tmp_path)])
    assert again.exit_code == 2 and "--overwrite" in again.output


@pytest.mark.slow
def test_fit_writes_reproduce_csv_into_the_run_folder(tmp_path):
    from bayes_stenosis.workflow import fit

    rec = {
        "outcome": "ODI",
        "time": 4,
        "measure": "change",
        "direction": "new_minus_reference",
        "estimate": -2,
        "se": 3,
    }
    study = write_study(tmp_path / "s", rows={"contrasts.csv": [rec]})
    run = fit(
        study, prior_set="vague", chains=2, draws=100, tune=100, seed=3, out=tmp_path / "o", progress=False, plots=False
    )
    table = pd.read_csv(run.folder / "reproduce.csv")
    assert table.iloc[0]["se"] == pytest.approx(3.0)


def test_within_arm_statements_are_checked_against_the_paired_test_of_the_entered_change(tmp_path):
    x_new, x_ref = _patients(21, n_new=25, n_ref=25, shift=-1.0, sd_new=8, sd_ref=8)  # both arms improve
    rows = _change_rows(x_new, x_ref, digits=2)
    within = [
        {
            "outcome": "ODI",
            "time": 4,
            "comparison": "within",
            "arm": arm,
            "relation": "<",
            "alpha": 0.05,
            "direction": direction,
            "test": "paired_t",
        }
        for arm in ("new_arm", "reference_arm")
        for direction in ("improvement",)
    ]
    folder = write_study(tmp_path / "w", rows={"arm_summaries.csv": rows, "thresholds.csv": within})
    table = reproduce_table(load_study(folder), SPEC)
    sub = table[table.comparison == "within"]
    assert len(sub) == 2 and (sub.status == "consistent").all()
    expected = stats.ttest_1samp(x_new, 0.0).pvalue
    new_row = sub[sub.arm == "new_arm"].iloc[0]
    assert new_row["recomputed_p_low"] <= expected <= new_row["recomputed_p_high"]
    # a "worsening" statement contradicts these improving changes
    wrong = [dict(within[0], direction="worsening")]
    folder = write_study(tmp_path / "x", rows={"arm_summaries.csv": rows, "thresholds.csv": wrong})
    table = reproduce_table(load_study(folder), SPEC)
    assert table[table.comparison == "within"].iloc[0]["status"] == "inconsistent"
