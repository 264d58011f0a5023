"""Rows of the contrasts: the printed p against the printed estimate and its CI or SE, TOST at the margin,
and the arithmetic of an estimate against per-arm mean changes entered beside it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bayes_stenosis.analyses.reproduce.compare import common_halves, half_unit, intervals_overlap, p_interval
from bayes_stenosis.analyses.reproduce.frequentist import reference_distribution, result_from_se
from bayes_stenosis.analyses.reproduce.rows import assumed_rho, empty_row, stat_columns
from bayes_stenosis.spec import ModelSpec
from bayes_stenosis.study import Study

__all__ = [
    "arithmetic_row",
    "checked_contrast_row",
    "contrast_p_function",
    "contrast_row",
    "contrast_rows",
    "published_contrast",
    "unchecked_contrast_row",
]


def contrast_rows(study: Study, spec: ModelSpec, contrasts: pd.DataFrame, sizes: dict, size_source: str) -> list[dict]:
    """Each contrast's row, followed by its arithmetic check when per-arm mean changes are entered.

    ``contrasts``: the contrasts with their derived SEs (``study.contrast_standard_errors``); ``sizes`` and
    ``size_source``: the randomised arm sizes and where they come from (``Study.randomised_arm_sizes``).
    """
    rows = []
    for rec in contrasts.to_dict("records"):
        rows.append(contrast_row(study, spec, rec, sizes, size_source))
        arithmetic = arithmetic_row(study, rec)
        if arithmetic is not None:
            rows.append(arithmetic)
    return rows


def published_contrast(rec: dict) -> str:
    """A contrasts.csv row as printed: "-1 (95% CI -2.1 to 0.1), p=0.075"."""
    published = f"{rec['estimate']:g}"
    if np.isfinite(rec["ci_low"]):
        published += f" ({rec['ci_level']:.0%} CI {rec['ci_low']:g} to {rec['ci_high']:g})"
    if np.isfinite(rec["se"]):
        published += f", SE {rec['se']:g}"
    if np.isfinite(rec["p_value"]):
        published += f", p={rec['p_value']:g}"
    return published


def contrast_row(study: Study, spec: ModelSpec, rec: dict, sizes: dict, size_source: str) -> dict:
    """A contrast's row: checked when both an exact p and a CI or SE are printed, else its CI and TOST only."""
    t, o = rec["time"], rec["outcome"]
    margin = study.outcome(o).margin
    dof = rec["df"] if np.isfinite(rec["df"]) else math.inf
    res = result_from_se(rec["estimate_nmr"], rec["se_derived"], dof)
    base = {
        "kind": "contrast",
        "source": f"contrasts.csv row {int(rec['row'])}",
        "time": t,
        "outcome": o,
        "comparison": "between",
        "test": f"{'t, df=' + format(dof, 'g') if np.isfinite(dof) else 'normal'} on {rec['measure']}",
        "published": published_contrast(rec),
        "published_p": rec["p_value"],
        **stat_columns(res, margin),
    }
    has_precision = np.isfinite(rec["se"]) or np.isfinite(rec["ci_low"])
    if has_precision and np.isfinite(rec["p_value"]):
        return checked_contrast_row(study, rec, base, dof)
    return unchecked_contrast_row(study, spec, rec, base, res, sizes, size_source)


def contrast_p_function(rec: dict, dof: float):
    """The p of the printed estimate as a function of the printed numbers it comes from (the estimate and
    its SE, else its CI limits), those numbers and their rounding half units: for :func:`p_interval`."""
    if np.isfinite(rec["se"]):

        def from_se(estimate, se, dof=dof):
            return result_from_se(estimate, se, dof)

        values = {"estimate": rec["estimate"], "se": rec["se"]}
        return from_se, values, common_halves(values, ["estimate", "se"])
    q = float(reference_distribution(dof).ppf(1 - (1 - rec["ci_level"]) / 2))

    def from_ci(estimate, ci_low, ci_high, q=q, dof=dof):
        return result_from_se(estimate, (ci_high - ci_low) / (2 * q), dof)

    values = {"estimate": rec["estimate"], "ci_low": rec["ci_low"], "ci_high": rec["ci_high"]}
    return from_ci, values, common_halves(values, ["estimate", "ci_low", "ci_high"])


def checked_contrast_row(study: Study, rec: dict, base: dict, dof: float) -> dict:
    """The printed p against the p recomputed from the printed estimate and its SE or CI, over their rounding."""
    sign = 1.0 if rec["direction"] == "new_minus_reference" else -1.0
    func, values, halves = contrast_p_function(rec, dof)
    p_lo, p_hi = p_interval(func, values, halves)
    h = half_unit(rec["p_value"])
    ok = intervals_overlap(p_lo, p_hi, rec["p_value"] - h, rec["p_value"] + h)
    return empty_row(
        study,
        **base,
        recomputed_p_low=p_lo,
        recomputed_p_high=p_hi,
        recomputed=f"p={func(**values)['p']:.4g} ({p_lo:.4g}-{p_hi:.4g}) from the estimate and its "
        f"{'SE' if np.isfinite(rec['se']) else 'CI'}",
        status="consistent" if ok else "inconsistent",
        tolerance=f"published p {rec['p_value']:g} +- {h:g} vs recomputed {p_lo:.4g}-{p_hi:.4g} "
        "(estimate and CI/SE +- half a unit of their last decimal)",
        basis="entered estimate with CI/SE" + (" (sign: new minus reference)" if sign < 0 else ""),
        note=""
        if ok
        else "the printed p does not follow from the printed estimate and CI/SE: check the "
        "reference distribution (t vs normal, df), a one-sided p, or a transcription error",
    )


def unchecked_contrast_row(
    study: Study, spec: ModelSpec, rec: dict, base: dict, res: dict, sizes: dict, size_source: str
) -> dict:
    """A contrast whose p cannot be checked (it is the only precision printed, or absent): why, and whether
    the SD of change its SE implies is plausible beside the outcome's reference SD."""
    o = rec["outcome"]
    why = (
        "the exact p is the only precision information: the SE is derived from it (se_from_p), so the p "
        "cannot be checked independently; CI and TOST below follow from that SE"
        if np.isfinite(rec["p_value"])
        else "no p-value printed: nothing to compare; CI and TOST from the printed CI/SE"
    )
    note = ""
    if sizes and np.isfinite(rec["p_value"]):
        implied_sd = rec["se_derived"] / math.sqrt(1 / sizes[study.new_arm] + 1 / sizes[study.reference_arm])
        ref_sd = study.outcome(o).reference_sd
        rho = assumed_rho(spec, study.outcome(o).instrument)
        note = f"plausibility: the implied SD of change is {implied_sd:.3g} with the {size_source}" + (
            f" (reference SD {ref_sd:g} with rho {rho:g} gives {ref_sd * math.sqrt(2 * (1 - rho)):.3g})"
            if ref_sd
            else ""
        )
    return empty_row(
        study,
        **base,
        recomputed=f"SE {res['se']:.4g}, 95% CI {res['ci_low']:.4g} to {res['ci_high']:.4g}",
        status="not recomputable",
        tolerance="",
        basis="entered estimate and p" if np.isfinite(rec["p_value"]) else "entered estimate and CI/SE",
        note=f"{why}. {note}".strip(),
    )


def arithmetic_row(study: Study, rec: dict) -> dict | None:
    """A derived estimate against the per-arm mean changes entered as facts (None unless both arms have one)."""
    new, ref = study.new_arm, study.reference_arm
    t, o = rec["time"], rec["outcome"]
    arm_df = study.evidence["arm_summary"]
    ch = arm_df[(arm_df.kind == "change") & (arm_df.time == t) & (arm_df.outcome == o) & arm_df["mean"].notna()]
    if set(ch.arm) != {new, ref}:
        return None
    mn, mr = (ch[ch.arm == a].iloc[0] for a in (new, ref))
    diff = mn["mean"] - mr["mean"]
    h = half_unit(mn["mean"]) + half_unit(mr["mean"]) + half_unit(rec["estimate"])
    ok = abs(diff - rec["estimate_nmr"]) <= h + 1e-12
    return empty_row(
        study,
        kind="arithmetic",
        source=f"contrasts.csv row {int(rec['row'])}; arm_summaries.csv rows {int(mn['row'])}, {int(mr['row'])}",
        time=t,
        outcome=o,
        comparison="between",
        test="difference of the per-arm mean changes",
        published=f"{rec['estimate']:g}",
        recomputed=f"{mn['mean']:g} - ({mr['mean']:g}) = {diff:.4g}",
        estimate=diff,
        status="consistent" if ok else "inconsistent",
        tolerance=f"+- {h:g} (half a unit of each entered decimal)",
        basis="entered per-arm mean changes (no n or SD: not a test)",
    )
