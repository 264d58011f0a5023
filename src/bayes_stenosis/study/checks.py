"""The rules a study's rows must keep: per row, per file (duplicates, IPD patients) and across files.

Each broken rule is an :class:`~bayes_stenosis.errors.InputError` naming the file, row and field.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from bayes_stenosis.errors import InputError
from bayes_stenosis.study.schema import EVIDENCE_FILES, StudyFile

if TYPE_CHECKING:  # Study is built from these checks' inputs; only its type is needed here
    from bayes_stenosis.study.study import Study


def check_rows(path: Path, level: str, df: pd.DataFrame, meta: StudyFile) -> None:
    """Check one evidence frame against ``study.toml``: ids, times, scale ranges, each level's row rules,
    duplicate cells and (IPD) every patient's baseline."""
    # lists in study.toml's order: the allowed values are printed in the order the user wrote them
    arms, outcomes = list(meta.arms), list(meta.outcomes)
    follow = set(meta.times.follow_up)
    all_times = follow | {meta.times.baseline}
    for rec in df.to_dict("records"):
        row = rec["row"]
        if "arm" in rec and rec["arm"] is not None and rec["arm"] not in arms:
            raise InputError(
                path,
                f"unknown arm {rec['arm']!r} (study.toml has: {', '.join(arms)})",
                row=row,
                field="arm",
            )
        if rec["outcome"] not in outcomes:
            raise InputError(
                path,
                f"unknown outcome {rec['outcome']!r} (study.toml has: {', '.join(outcomes)})",
                row=row,
                field="outcome",
            )
        allowed_times = all_times if level in ("ipd", "arm_summary") else follow
        if rec["time"] not in allowed_times:
            raise InputError(
                path,
                f"unknown time {rec['time']:g} (study.toml has: {', '.join(f'{t:g}' for t in sorted(allowed_times))})",
                row=row,
                field="time",
            )
        spec = meta.outcomes[rec["outcome"]]
        lo, hi = spec.scale_min, spec.scale_max
        if level == "ipd":
            _check_value_in_scale(path, row, "value", rec["value"], lo, hi)
        elif level == "arm_summary":
            _check_arm_summary_row(path, rec, lo, hi, meta)
        elif level == "contrast":
            _check_contrast_row(path, rec, hi - lo)
        elif level == "threshold":
            _check_threshold_row(path, rec)
    _check_duplicates(path, level, df)
    if level == "ipd":
        _check_ipd_patients(path, df, meta.times.baseline)


def _check_value_in_scale(path, row, name, value, lo, hi) -> None:
    if not math.isnan(value) and not lo <= value <= hi:
        raise InputError(path, f"outside the scale range {lo:g} to {hi:g} (got {value:g})", row=row, field=name)


def _check_arm_summary_row(path: Path, rec: dict, lo: float, hi: float, meta: StudyFile) -> None:
    row = rec["row"]
    for name in ("n", "sd"):
        value = rec[name]
        if not math.isnan(value) and value <= 0:
            raise InputError(path, f"must be > 0 (got {value:g})", row=row, field=name)
    if rec["kind"] == "score":
        _check_value_in_scale(path, row, "mean", rec["mean"], lo, hi)
    else:
        if rec["time"] == meta.times.baseline:
            raise InputError(path, "a change from baseline needs a follow-up time", row=row, field="time")
        if not math.isnan(rec["mean"]) and abs(rec["mean"]) > hi - lo:
            raise InputError(
                path,
                f"a change cannot exceed the scale width {hi - lo:g} (got {rec['mean']:g})",
                row=row,
                field="mean",
            )
    if not math.isnan(rec["sd"]) and rec["sd"] > (hi - lo):
        raise InputError(
            path,
            f"an SD larger than the scale width {hi - lo:g} (got {rec['sd']:g})",
            row=row,
            field="sd",
        )


def _check_contrast_row(path: Path, rec: dict, width: float) -> None:
    """A contrast row: an estimate within the scale width, p in (0, 1], a CI that contains the estimate,
    positive SE and df, and some uncertainty (SE, CI or p) that gives an SE."""
    row, est = rec["row"], rec["estimate"]
    if abs(est) > width:
        raise InputError(
            path,
            f"a difference cannot exceed the scale width {width:g} (got {est:g})",
            row=row,
            field="estimate",
        )
    p = rec["p_value"]
    if not math.isnan(p) and not 0 < p <= 1:
        raise InputError(path, f"must be in (0, 1] (got {p:g})", row=row, field="p_value")
    _check_contrast_ci(path, rec)
    for name in ("se", "df"):
        value = rec[name]
        if not math.isnan(value) and value <= 0:
            raise InputError(path, f"must be > 0 (got {value:g})", row=row, field=name)
    _check_contrast_has_se(path, rec)


def _check_contrast_ci(path: Path, rec: dict) -> None:
    """A contrast's CI: both ends or neither; if given, increasing, containing the estimate, with its level."""
    row, est = rec["row"], rec["estimate"]
    lo, hi = rec["ci_low"], rec["ci_high"]
    if math.isnan(lo) != math.isnan(hi):
        raise InputError(
            path,
            "give both ci_low and ci_high, or neither",
            row=row,
            field="ci_high" if math.isnan(hi) else "ci_low",
        )
    if math.isnan(lo):
        return
    if not lo < hi:
        raise InputError(path, f"ci_low must be below ci_high (got {lo:g} and {hi:g})", row=row, field="ci_low")
    if not lo <= est <= hi:
        raise InputError(
            path,
            f"the CI {lo:g} to {hi:g} does not contain the estimate {est:g}",
            row=row,
            field="estimate",
        )
    level = rec["ci_level"]
    if math.isnan(level):
        raise InputError(path, "a CI needs its ci_level (e.g. 0.95)", row=row, field="ci_level")
    if not 0 < level < 1:
        raise InputError(path, f"must be in (0, 1) (got {level:g})", row=row, field="ci_level")


def _check_contrast_has_se(path: Path, rec: dict) -> None:
    """The model needs the contrast's SE: given, or derived from the CI, or from the p-value (not when the
    estimate is 0)."""
    row, se, no_ci = rec["row"], rec["se"], math.isnan(rec["ci_low"])
    if math.isnan(se) and no_ci and math.isnan(rec["p_value"]):
        raise InputError(
            path,
            "needs se, a CI (ci_low, ci_high, ci_level) or an exact p_value",
            row=row,
            field="se",
        )
    if math.isnan(se) and no_ci and rec["estimate"] == 0:
        raise InputError(
            path,
            "an SE cannot be derived from a p-value when the estimate is 0",
            row=row,
            field="p_value",
        )


def _check_threshold_row(path: Path, rec: dict) -> None:
    row = rec["row"]
    alpha = rec["alpha"]
    if not 0 < alpha < 1:
        raise InputError(path, f"must be in (0, 1) (got {alpha:g})", row=row, field="alpha")
    comparison, direction, test = rec["comparison"], rec["direction"], rec["test"]
    if comparison == "within" and rec["arm"] is None:
        raise InputError(path, "a within-arm statement needs its arm", row=row, field="arm")
    if comparison == "between" and rec["arm"] is not None:
        raise InputError(path, "a between-arm statement has no arm (leave it empty)", row=row, field="arm")
    if comparison == "between" and test == "paired_t":
        raise InputError(
            path,
            "a between-arm statement needs a two-sample test (two_sample_t, welch_t or normal)",
            row=row,
            field="test",
        )
    if comparison == "within" and test in ("two_sample_t", "welch_t"):
        raise InputError(path, "a within-arm statement needs paired_t or normal", row=row, field="test")
    if rec["relation"] == "<":
        wanted = ("favours_new", "favours_reference") if comparison == "between" else ("improvement", "worsening")
        if direction not in wanted:
            raise InputError(
                path,
                f"'P<alpha' needs the reported direction: one of {', '.join(wanted)} (got {direction!r})",
                row=row,
                field="direction",
            )
    elif direction is not None:
        raise InputError(path, "'P>alpha' has no direction (leave it empty)", row=row, field="direction")
    p = rec["p_value"]
    if not math.isnan(p):
        if not 0 < p <= 1:
            raise InputError(path, f"must be in (0, 1] (got {p:g})", row=row, field="p_value")
        if (rec["relation"] == "<") != (p < alpha):
            raise InputError(
                path,
                f"p_value {p:g} contradicts the relation P{rec['relation']}{alpha:g}",
                row=row,
                field="p_value",
            )


_KEYS = {
    "ipd": ["patient", "outcome", "time"],
    "arm_summary": ["arm", "outcome", "time", "kind"],
    "contrast": ["outcome", "time"],
    "threshold": ["outcome", "time", "comparison", "arm"],
}


def _check_duplicates(path: Path, level: str, df: pd.DataFrame) -> None:
    keys = _KEYS[level]
    dup = df[df.duplicated(subset=keys, keep="first")]
    if len(dup):
        rec = dup.iloc[0]
        first = df[(df[keys].fillna("") == rec[keys].fillna("")).all(axis=1)].iloc[0]
        what = ", ".join(
            f"{k}={rec[k]:g}" if isinstance(rec[k], float) else f"{k}={rec[k]}" for k in keys if rec[k] is not None
        )
        raise InputError(
            path,
            f"duplicate cell ({what}) already given in row {int(first['row'])}",
            row=int(rec["row"]),
            field=keys[0],
        )
    if level == "ipd":
        arms_per_patient = df.groupby("patient")["arm"].nunique()
        bad = arms_per_patient[arms_per_patient > 1]
        if len(bad):
            patient = bad.index[0]
            rec = df[df.patient == patient].iloc[1]
            raise InputError(path, f"patient {patient!r} appears in two arms", row=int(rec["row"]), field="arm")


def _check_ipd_patients(path: Path, df: pd.DataFrame, baseline_time: float) -> None:
    """The IPD model conditions on each patient's baseline and compares the two arms' patients:
    every patient needs a baseline value for each outcome it has rows for, and each outcome needs
    patients in both arms. Follow-up values may be missing (empty value or no row)."""
    if not len(df):
        return
    is_base = df["time"] == baseline_time
    has_base = df[is_base & df["value"].notna()].set_index(["patient", "outcome"]).index
    keys = pd.MultiIndex.from_frame(df[["patient", "outcome"]])
    lacking = ~keys.isin(has_base)
    if lacking.any():
        rec = df[lacking].iloc[0]
        what = "an empty baseline value" if bool(is_base[lacking].iloc[0]) else "no baseline row"
        raise InputError(
            path,
            f"patient {rec['patient']!r} has {what} for outcome {rec['outcome']}: the IPD model conditions "
            "on every patient's baseline (only follow-up values may be missing)",
            row=int(rec["row"]),
            field="value",
        )
    arms_per_outcome = df.groupby("outcome", sort=False)["arm"].nunique()
    one_arm = arms_per_outcome[arms_per_outcome < 2]
    if len(one_arm):
        outcome = one_arm.index[0]
        rec = df[df["outcome"] == outcome].iloc[0]
        raise InputError(
            path,
            f"outcome {outcome} has patients in one arm only: the IPD model needs both arms' patients for an "
            "outcome (give the other arm's patients, or this arm's data as arm summaries instead)",
            row=int(rec["row"]),
            field="arm",
        )


def check_cross_file(study: Study) -> None:
    """Refuse double counting: a follow-up cell takes its between-arm evidence from one level."""
    files = {level: study.folder / name for level, name in EVIDENCE_FILES.items()}
    ipd, arm = study.ipd_cells(), study.arm_summary_cells()
    usable = study.usable_arm_summaries()
    for rec in study.evidence["contrast"].to_dict("records"):
        cell = (rec["time"], rec["outcome"])
        if cell in arm or cell in ipd:
            other = "arm_summaries.csv" if cell in arm else "ipd.csv"
            raise InputError(
                files["contrast"],
                f"two evidence levels for the same cell (outcome {rec['outcome']}, time {rec['time']:g}): "
                f"{other} already gives it; remove one to avoid double counting",
                row=rec["row"],
                field="outcome",
            )
    ipd_frame = study.evidence["ipd"]
    ipd_arm_outcome = {(a, o) for a, o in ipd_frame[["arm", "outcome"]].drop_duplicates().values}
    for rec in usable.to_dict("records"):
        if (rec["arm"], rec["outcome"]) in ipd_arm_outcome:
            raise InputError(
                files["arm_summary"],
                f"two evidence levels for the same cell (arm {rec['arm']}, outcome {rec['outcome']}): "
                "ipd.csv already gives these patients; remove one to avoid double counting",
                row=rec["row"],
                field="arm",
            )
