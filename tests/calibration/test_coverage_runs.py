"""The pieces of the coverage runs that need no sampling: truths within the scales, the change-score
correlation, the summary files, the trial-clustered interval and the merging of trial ranges; and the
recorded coverage figures of VALIDATION.md against what the summary gives on the saved trials.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_stenosis import simulation as sim
from bayes_stenosis.calibration import (
    ODI,
    RMDQ,
    binomial_interval,
    change_score_correlation,
    coverage_summary,
    exchangeable_correlation,
    first_within_scale,
    merge_coverage,
    trial_clustered_interval,
)

ROOT = Path(__file__).resolve().parents[2]
RUNS = sorted((ROOT / "validation").glob("coverage*/coverage_*_trials.csv"))


def test_first_within_scale_keeps_the_first_draws_that_fit_and_counts_the_rest():
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
    r = 0.75
    truth = sim.default_truth(
        outcomes=(ODI, RMDQ),
        outcome_corr=exchangeable_correlation(2, r),
        follow_up=(8.0,),
        change_reference=np.zeros((1, 2)),
        n_per_arm=(20_000, 20_000),
    )
    rho1, rho2 = ODI.rho, RMDQ.rho
    closed = r * (2 - rho1 - rho2) / (2 * np.sqrt((1 - rho1) * (1 - rho2)))
    assert change_score_correlation(truth)[0][1] == pytest.approx(closed, abs=1e-4)
    # empirical correlation of 40,000 patients' change scores: SE (1 - c^2) / sqrt(n) ~ 0.002
    wide = sim.simulate_patients(truth, seed=3).pivot_table(
        index="patient", columns=["outcome", "time"], values="value"
    )
    change = {o: wide[(o, 8.0)] - wide[(o, 0.0)] for o in ("ODI", "RMDQ")}
    empirical = np.corrcoef(change["ODI"], change["RMDQ"])[0, 1]
    assert abs(empirical - closed) < 4 * (1 - closed**2) / np.sqrt(40_000)


def test_coverage_summary_counts_each_time_x_outcome_cell_with_exact_intervals(tmp_path):
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
    summary = coverage_summary(rows, tmp_path, "prior", 6, 20, "ipd", 0.9, 0.0, "abc")
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
    lo, hi = trial_clustered_interval(trial, same)
    share = hit.mean()
    half = 1.959964 * np.sqrt(share * (1 - share) / (trials - 1))  # SE of a mean of 0/1, ddof=1
    assert (lo, hi) == pytest.approx((share - half, share + half), rel=1e-9)
    # independent cells: the clustered SE equals the binomial SE of all cells up to its sampling
    # error (a relative SE of about 1/sqrt(2 * trials) = 3.5 %; 5 of them allowed)
    indep = pd.Series(rng.random(trials * cells) < 0.9)
    lo, hi = trial_clustered_interval(trial, indep)
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
    whole = coverage_summary(rows, tmp_path / "whole", "zero", 10, 20, "ipd", 0.9, 0.0, "abc")
    coverage_summary(rows[:12], tmp_path / "a", "zero", 10, 20, "ipd", 0.9, 0.0, "abc")  # trials 0-5
    coverage_summary(rows[8:], tmp_path / "b", "zero", 10, 20, "ipd", 0.9, 0.0, "abc")  # 4-9: 4, 5 twice
    merged = merge_coverage([tmp_path / "a", tmp_path / "b"], "zero", tmp_path / "m")
    assert merged["trials_done"] == 10 and merged["cells"] == whole["cells"]
    assert merged["overall_coverage_ci95_by_trial"] == whole["overall_coverage_ci95_by_trial"]
    conflicting = [dict(r, covered=not r["covered"]) if r["trial"] == 5 else r for r in rows[8:]]
    coverage_summary(conflicting, tmp_path / "c", "zero", 10, 20, "ipd", 0.9, 0.0, "abc")
    with pytest.raises(ValueError, match=r"trials \[5\] were fitted in two parts"):
        merge_coverage([tmp_path / "a", tmp_path / "c"], "zero", tmp_path / "m2")


def numbers(value, path=""):
    """The numbers of a nested summary, by their path (``cells/ODI/coverage_ci95/0``)."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in numbers(item, f"{path}/{key}").items()}
    if isinstance(value, list | tuple):
        return {k: v for i, item in enumerate(value) for k, v in numbers(item, f"{path}/{i}").items()}
    return {path: value}


@pytest.mark.skipif(not RUNS, reason="no saved coverage runs (validation/ is not in this checkout)")
@pytest.mark.parametrize("trials_csv", RUNS, ids=[f"{p.parent.name}/{p.name}" for p in RUNS])
def test_recorded_coverage_figures_are_what_the_summary_gives_on_the_saved_trials(tmp_path, trials_csv):
    kind = trials_csv.name.removeprefix("coverage_").removesuffix("_trials.csv")
    recorded = json.loads((trials_csv.parent / f"coverage_{kind}.json").read_text())
    settings = [recorded[k] for k in ("trials_planned", "n_per_arm", "level", "prob")]
    summary = coverage_summary(pd.read_csv(trials_csv), tmp_path, kind, *settings, 0.0, recorded["commit"])
    # the trial-clustered interval came after the first runs: compare what each run recorded
    keys = ["trials_done", "cells", "overall_coverage", "overall_coverage_ci95", "max_rhat", "divergent_trials"]
    keys += [k for k in ("overall_coverage_ci95_by_trial",) if k in recorded]
    got, expected = numbers({k: summary[k] for k in keys}), numbers({k: recorded[k] for k in keys})
    assert got == pytest.approx(expected, rel=1e-9)
