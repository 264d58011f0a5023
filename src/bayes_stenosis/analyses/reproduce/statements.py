r"""Rows of the published threshold statements ("P>0.05") that no entered data stand behind.

Nothing can be recomputed, but their frequentist meaning can be shown under assumed SDs (the
outcome's cited ``reference_sd`` and the spec's :math:`\rho`, :math:`SD_{change} = s\sqrt{2(1-\rho)}`,
arm sizes from the study): "P>alpha" admits every :math:`|d| < t_{1-\alpha/2,df} SE`, while TOST at
the margin could succeed only if :math:`|d| + t_{1-\alpha,df} SE < m`. These rows are labelled as
computed from assumed SDs, not from trial data. A statement about a cell with patient-level data or a
contrast says so instead; one about an arm-summary cell is compared where that cell is recomputed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bayes_stenosis.analyses.reproduce.frequentist import TOST_ALPHA, reference_distribution, tost
from bayes_stenosis.analyses.reproduce.rows import assumed_rho, threshold_row
from bayes_stenosis.spec import ModelSpec
from bayes_stenosis.study import Study

__all__ = ["assumed_standard_error", "between_meaning", "meaning_summary", "statement_rows", "threshold_meaning"]


def statement_rows(study: Study, spec: ModelSpec, contrasts: pd.DataFrame, sizes: dict, size_source: str) -> list[dict]:
    """One row per threshold statement not compared with an arm-summary cell, in thresholds.csv order.

    ``contrasts``, ``sizes``, ``size_source``: as for :func:`~.contrast.contrast_rows`.
    """
    arm_cells = study.arm_summary_cells()
    ipd_cells = study.ipd_cells()
    covered = set(arm_cells) | ipd_cells | {(float(r["time"]), str(r["outcome"])) for r in contrasts.to_dict("records")}
    rows = []
    for rec in study.evidence["threshold"].to_dict("records"):
        t, o = float(rec["time"]), str(rec["outcome"])
        if (t, o) in covered:
            if (t, o) in arm_cells:
                continue  # compared with the recomputed tests of the cell
            row = threshold_row(study, rec)
            row["note"] = (
                "patient-level data: recomputing the test from ipd.csv is not implemented in this version"
                if (t, o) in ipd_cells
                else "this cell's evidence is a contrast without per-arm data; the statement is superseded"
            )
            rows.append(row)
            continue
        rows.append(threshold_meaning(study, spec, rec, sizes, size_source))
    return rows


def threshold_meaning(study: Study, spec: ModelSpec, rec: dict, sizes: dict, size_source: str) -> dict:
    """A threshold row with no data behind it: what it admits under assumed SDs."""
    o = str(rec["outcome"])
    out = study.outcome(o)
    base = threshold_row(study, rec)
    reason = "only a threshold statement: no means or SDs are entered for this cell"
    if out.reference_sd is None or not sizes:
        base["note"] = reason + "; no reference SD or arm sizes to show its meaning under assumptions"
        return base
    rho = assumed_rho(spec, out.instrument)
    sd_c = out.reference_sd * math.sqrt(2 * (1 - rho))
    alpha = rec["alpha"]
    se, dof, n_text = assumed_standard_error(study, rec, sd_c, sizes, size_source)
    dist = reference_distribution(dof)
    crit = float(dist.ppf(1 - alpha / 2))
    margin = out.margin
    base.update(
        {
            "se": se,
            "df": dof,
            "margin": margin if rec["comparison"] == "between" else np.nan,
            "basis": f"ASSUMED, not trial data: SD of change = reference SD {out.reference_sd:g} x sqrt(2(1 - rho)), "
            f"rho {rho:.3g} (spec), = {sd_c:.3g}; {n_text}",
            "tolerance": "",
        }
    )
    bound = crit * se
    if rec["relation"] == ">":
        base["max_abs_difference_if_p_above_alpha"] = bound
    else:
        base["min_abs_difference_if_p_below_alpha"] = bound
    notes = [reason]
    if rec["comparison"] == "between" and margin is not None:
        notes += between_meaning(base, rec, se, dof, bound, margin, out.unit)
    else:
        notes.append(
            f"'P{rec['relation']}{alpha:g}' within the arm means |change| {'>=' if rec['relation'] == '<' else '<'} "
            f"{bound:.3g} {out.unit}"
        )
    base["note"] = "; ".join(notes)
    base["recomputed"] = meaning_summary(base, alpha, sd_c, se, bound, margin)
    return base


def assumed_standard_error(
    study: Study, rec: dict, sd_c: float, sizes: dict, size_source: str
) -> tuple[float, float, str]:
    """SE, df and the arm sizes in words of the statement's test, for an SD of change ``sd_c`` in each arm."""
    if rec["comparison"] == "between":
        n1, n2 = sizes[study.new_arm], sizes[study.reference_arm]
        se = sd_c * math.sqrt(1 / n1 + 1 / n2)
        if rec["test"] == "welch_t":
            a, b = 1 / n1, 1 / n2
            dof = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
        elif rec["test"] == "normal":
            dof = math.inf
        else:
            dof = n1 + n2 - 2
        return se, dof, f"n {n1:g} + {n2:g} ({size_source})"
    n_a = sizes[rec["arm"]]
    se = sd_c / math.sqrt(n_a)
    dof = n_a - 1 if rec["test"] == "paired_t" else math.inf
    return se, dof, f"n {n_a:g} ({size_source})"


def between_meaning(base: dict, rec: dict, se: float, dof: float, bound: float, margin: float, unit: str) -> list[str]:
    """The notes of a between-arm statement beside TOST at the margin (filling TOST's columns of ``base``):
    where "P>alpha" and equivalence part ways, and what an exact p implies."""
    alpha = rec["alpha"]
    dist = reference_distribution(dof)
    notes = []
    t95 = float(dist.ppf(1 - TOST_ALPHA))
    tost_room = margin - t95 * se
    base["max_abs_difference_for_tost_equivalence"] = tost_room
    if np.isfinite(rec["p_value"]):
        implied = float(dist.ppf(1 - rec["p_value"] / 2)) * se
        p_tost = tost(implied, se, dof, margin)
        base.update({"estimate": implied, "tost_p": p_tost, "tost_equivalent": bool(p_tost < TOST_ALPHA)})
        notes.append(
            f"the exact p {rec['p_value']:g} implies |d| = {implied:.3g} {unit} under these SDs; TOST at "
            f"+-{margin:g} gives p = {p_tost:.3g}"
        )
    if rec["relation"] == ">":
        if tost_room <= 0:
            notes.append(
                f"'P>{alpha:g}' admits |d| up to {bound:.3g} {unit}; TOST at +-{margin:g} could not succeed "
                f"even at d = 0 (t_{{0.95}} x SE = {t95 * se:.3g} >= margin): P>{alpha:g} and equivalence part ways"
            )
        elif bound > tost_room:
            notes.append(
                f"'P>{alpha:g}' admits |d| up to {bound:.3g} {unit}, but TOST at +-{margin:g} needs "
                f"|d| < {tost_room:.3g}: any |d| from {tost_room:.3g} to {bound:.3g} is 'P>{alpha:g}' and yet "
                "not shown equivalent: P>alpha and equivalence part ways"
            )
        else:
            notes.append(f"every |d| compatible with 'P>{alpha:g}' would also pass TOST at +-{margin:g}")
    else:
        notes.append(f"'P<{alpha:g}' means |d| >= {bound:.3g} {unit} ({rec['direction']}); the margin is {margin:g}")
    return notes


def meaning_summary(base: dict, alpha: float, sd_c: float, se: float, bound: float, margin: float | None) -> str:
    """The ``recomputed`` column of an assumed-SD row: the SD and SE assumed and the bounds they give."""
    summary = [f"ASSUMED SD {sd_c:.3g}, SE {se:.3g}"]
    if np.isfinite(base["max_abs_difference_if_p_above_alpha"]):
        summary.append(f"P>{alpha:g} <=> |d| < {bound:.3g}")
    if np.isfinite(base["min_abs_difference_if_p_below_alpha"]):
        summary.append(f"P<{alpha:g} <=> |d| >= {bound:.3g}")
    if np.isfinite(base["max_abs_difference_for_tost_equivalence"]):
        summary.append(f"TOST at +-{margin:g} needs |d| < {base['max_abs_difference_for_tost_equivalence']:.3g}")
    return "; ".join(summary)
