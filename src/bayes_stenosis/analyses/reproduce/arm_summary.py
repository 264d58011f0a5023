"""Rows of the arm-summary cells: the between-arm tests recomputed from per-arm n, mean and SD (of the
change, or of baseline and follow-up scores), compared with any published statement of the cell, and the
within-arm paired tests of the entered changes.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from bayes_stenosis.analyses.reproduce.compare import (
    common_halves,
    compare_threshold,
    explain_mismatch,
    p_interval,
    published_text,
)
from bayes_stenosis.analyses.reproduce.frequentist import ancova_approximation, one_sample, two_sample
from bayes_stenosis.analyses.reproduce.rows import assumed_rho, empty_row, stat_columns
from bayes_stenosis.spec import ModelSpec
from bayes_stenosis.stats import sd_change
from bayes_stenosis.study import Study

__all__ = [
    "Candidate",
    "ancova_row",
    "arm_summary_rows",
    "between_rows",
    "cell_rows",
    "change_candidates",
    "score_candidates",
    "summary_row",
    "within_rows",
]


class Candidate(NamedTuple):
    """One between-arm test a cell's entered numbers allow: on which measure, which test, its inputs, the
    half units of their rounding, the rows they come from and what they are."""

    measure: str  # "change" or "follow_up"
    test: str  # "two_sample_t" or "welch_t"
    values: dict
    halves: dict
    source: str
    basis: str


def arm_summary_rows(study: Study, spec: ModelSpec) -> list[dict]:
    """Every arm-summary cell's rows, cells in (time, outcome) order."""
    usable = study.usable_arm_summaries()
    rows: list[dict] = []
    for t, o in sorted(study.arm_summary_cells()):
        rows += cell_rows(study, spec, usable, t, o)
    return rows


def summary_row(usable: pd.DataFrame, arm: str, outcome: str, kind: str, time: float) -> pd.Series | None:
    """The usable arm-summary row of an arm, outcome, kind ("change" or "score") and time, if entered."""
    r = usable[(usable.arm == arm) & (usable.outcome == outcome) & (usable.kind == kind) & (usable.time == time)]
    return None if r.empty else r.iloc[0]


def cell_rows(study: Study, spec: ModelSpec, usable: pd.DataFrame, t: float, o: str) -> list[dict]:
    """One cell: the ANCOVA approximation (scores only), each candidate test, then the within-arm tests.

    A published between-arm statement is compared with the test on the cell's primary measure: the
    change when the new arm's change is entered, else the follow-up scores.
    """
    new, ref = study.new_arm, study.reference_arm
    margin = study.outcome(o).margin
    rho = assumed_rho(spec, study.outcome(o).instrument)
    new_better_sign = -1.0 if study.outcome(o).direction == "lower_is_better" else 1.0
    thr = study.evidence["threshold"]
    cell_thr = thr[(thr.time == t) & (thr.outcome == o) & (thr.comparison == "between")].to_dict("records")
    cn, cr = summary_row(usable, new, o, "change", t), summary_row(usable, ref, o, "change", t)
    rows = []
    if cn is not None and cr is not None:
        candidates = change_candidates(cn, cr)
    else:
        scores = tuple(
            summary_row(usable, arm, o, "score", time) for arm in (new, ref) for time in (study.meta.times.baseline, t)
        )
        candidates = score_candidates(scores, rho)
        rows.append(ancova_row(study, scores, rho, t, o, margin))
    primary_measure = "change" if cn is not None else "follow_up"
    for candidate in candidates:
        primary = candidate.measure == primary_measure
        rows += between_rows(study, candidate, cell_thr, primary, t, o, margin, new_better_sign)
    rows += within_rows(study, ((new, cn), (ref, cr)), t, o, new_better_sign)
    return rows


def change_candidates(cn: pd.Series, cr: pd.Series) -> list[Candidate]:
    """Pooled and Welch t on the entered changes of the new (``cn``) and reference (``cr``) arms."""
    values = {
        "mean_new": cn["mean"],
        "sd_new": cn["sd"],
        "n_new": cn["n"],
        "mean_ref": cr["mean"],
        "sd_ref": cr["sd"],
        "n_ref": cr["n"],
    }
    halves = common_halves(values, ["mean_new", "sd_new", "mean_ref", "sd_ref"])
    src = f"arm_summaries.csv rows {int(cn['row'])}, {int(cr['row'])}"
    return [
        Candidate("change", test, values, halves, src, "entered change n, mean, SD")
        for test in ("two_sample_t", "welch_t")
    ]


def score_sources(scores: tuple) -> str:
    return f"arm_summaries.csv rows {', '.join(str(int(r['row'])) for r in scores)}"


def score_candidates(scores: tuple, rho: float) -> list[Candidate]:
    """From (new baseline, new follow-up, reference baseline, reference follow-up) scores: the t-test on
    follow-up scores (exact), and on change with its SD from the scores' SDs and the assumed ``rho``."""
    bn, fn, br, fr = scores
    src = score_sources(scores)
    fvalues = {
        "mean_new": fn["mean"],
        "sd_new": fn["sd"],
        "n_new": fn["n"],
        "mean_ref": fr["mean"],
        "sd_ref": fr["sd"],
        "n_ref": fr["n"],
    }
    fhalves = common_halves(fvalues, ["mean_new", "sd_new", "mean_ref", "sd_ref"])
    cvalues = {
        "mean_new": fn["mean"] - bn["mean"],
        "sd_new": float(sd_change(bn["sd"], fn["sd"], rho)),
        "n_new": fn["n"],
        "mean_ref": fr["mean"] - br["mean"],
        "sd_ref": float(sd_change(br["sd"], fr["sd"], rho)),
        "n_ref": fr["n"],
    }
    h = common_halves(
        {f"{k}{i}": r[k] for i, r in enumerate(scores) for k in ("mean", "sd")},
        [f"{k}{i}" for i in range(4) for k in ("mean", "sd")],
    )["mean0"]
    chalves = {"mean_new": 2 * h, "mean_ref": 2 * h}  # a change is a difference of two rounded means
    return [
        Candidate("follow_up", "two_sample_t", fvalues, fhalves, src, "entered follow-up n, mean, SD"),
        Candidate(
            "change",
            "two_sample_t",
            cvalues,
            chalves,
            src,
            f"change SD from baseline/follow-up SDs, assumed rho {rho:g}",
        ),
    ]


def ancova_row(study: Study, scores: tuple, rho: float, t: float, o: str, margin: float | None) -> dict:
    """The ANCOVA approximation from the scores: shown beside a published ANCOVA, never compared."""
    bn, fn, br, fr = scores
    anc = ancova_approximation(
        bn["mean"],
        fn["mean"],
        bn["sd"],
        fn["sd"],
        fn["n"],
        br["mean"],
        fr["mean"],
        br["sd"],
        fr["sd"],
        fr["n"],
        rho,
    )
    return empty_row(
        study,
        kind="recomputed",
        source=score_sources(scores),
        time=t,
        outcome=o,
        comparison="between",
        test="ancova_approximation",
        **stat_columns(anc, margin),
        recomputed=f"d={anc['estimate']:.4g}, p={anc['p']:.4g} (ANCOVA approximation)",
        status="no published value",
        basis=f"entered scores, assumed rho {rho:g} (ANCOVA approximation)",
        note="baseline-adjusted estimate from summary statistics; shown for comparison with a published "
        "ANCOVA, not a published test here",
    )


def between_rows(
    study: Study,
    candidate: Candidate,
    cell_thr: list[dict],
    primary: bool,
    t: float,
    o: str,
    margin: float | None,
    new_better_sign: float,
) -> list[dict]:
    """A candidate test's rows: one per matching published statement when the candidate is on the cell's
    ``primary`` measure (a "normal" statement matches the pooled t), else one with no published value."""
    measure, test, values, halves, src, basis = candidate
    res = two_sample(**values, test=test)
    p_lo, p_hi = p_interval(lambda test=test, **v: two_sample(**v, test=test), values, halves)
    matching = [r for r in cell_thr if r["test"] == test or (test == "two_sample_t" and r["test"] == "normal")]
    base = {
        "kind": "recomputed",
        "source": src,
        "time": t,
        "outcome": o,
        "comparison": "between",
        "test": f"{test} on {measure}",
        **stat_columns(res, margin),
        "recomputed_p_low": p_lo,
        "recomputed_p_high": p_hi,
        "recomputed": f"d={res['estimate']:.4g}, p={res['p']:.4g} ({p_lo:.4g}-{p_hi:.4g} over input rounding)",
        "basis": basis,
    }
    if not (matching and primary):
        return [empty_row(study, **base, status="no published value")]
    rows = []
    for rec in matching:
        status, tol = compare_threshold(rec, p_lo, p_hi, res["estimate"], new_better_sign)
        rows.append(
            empty_row(
                study,
                **(base | {"source": f"{src}; thresholds.csv row {int(rec['row'])}"}),
                published=published_text(rec),
                published_p=rec["p_value"],
                status=status,
                tolerance=tol,
                note=explain_mismatch(status, rec, res),
            )
        )
    return rows


def within_rows(study: Study, arm_changes: tuple, t: float, o: str, new_better_sign: float) -> list[dict]:
    """The paired t of each arm's entered change (``arm_changes``: (arm, its change row or None) pairs)
    against each within-arm statement of that arm in the cell."""
    thr = study.evidence["threshold"]
    rows = []
    for arm, rec_change in arm_changes:
        if rec_change is None:
            continue
        for rec in thr[(thr.time == t) & (thr.outcome == o) & (thr.comparison == "within") & (thr.arm == arm)].to_dict(
            "records"
        ):
            values = {"mean": rec_change["mean"], "sd": rec_change["sd"], "n": rec_change["n"]}
            halves = common_halves(values, ["mean", "sd"])
            res = one_sample(**values, test=rec["test"])
            p_lo, p_hi = p_interval(lambda test=rec["test"], **v: one_sample(**v, test=test), values, halves)
            status, tol = compare_threshold(rec, p_lo, p_hi, res["estimate"], new_better_sign)
            rows.append(
                empty_row(
                    study,
                    kind="recomputed",
                    source=f"arm_summaries.csv row {int(rec_change['row'])}; thresholds.csv row {int(rec['row'])}",
                    time=t,
                    outcome=o,
                    comparison="within",
                    arm=arm,
                    test=rec["test"],
                    **stat_columns(res, None),
                    recomputed_p_low=p_lo,
                    recomputed_p_high=p_hi,
                    recomputed=f"change={res['estimate']:.4g}, p={res['p']:.4g}",
                    published=published_text(rec),
                    published_p=rec["p_value"],
                    status=status,
                    tolerance=tol,
                    basis="entered change n, mean, SD",
                    note=explain_mismatch(status, rec, res),
                )
            )
    return rows
