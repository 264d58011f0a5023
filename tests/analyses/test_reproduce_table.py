"""``analyses.reproduce.reproduce_table``: published P values checked within rounding tolerances, SD/SE
mix-ups detected, threshold-only rows bounded under assumed SDs, within-arm statements checked against the
paired test, and every bundled study tabulated with a reason per row."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from bayes_stenosis.analyses import (
    reproduce_table,
    tost,
)
from bayes_stenosis.resources import bundled_study_ids
from bayes_stenosis.spec import load_spec
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import write_study
from tests.analyses.raw_samples import mean_sd_n, two_arm_changes

SPEC, _ = load_spec("default")


def _change_rows(x_new, x_ref, sd_transform=lambda sd, n: sd, digits=None):
    rows = []
    for arm, x in (("new_arm", x_new), ("reference_arm", x_ref)):
        m, s, n = mean_sd_n(x)
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
    x_new, x_ref = two_arm_changes(11, n_new=20, n_ref=20, shift=-2.0, sd_new=12, sd_ref=12)
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


def test_within_arm_statements_are_checked_against_the_paired_test_of_the_entered_change(tmp_path):
    x_new, x_ref = two_arm_changes(21, n_new=25, n_ref=25, shift=-1.0, sd_new=8, sd_ref=8)  # both arms improve
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
