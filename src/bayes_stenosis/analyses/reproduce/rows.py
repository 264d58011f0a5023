"""The rows of ``reproduce.csv``: their columns and the pieces every kind of row shares."""

from __future__ import annotations

import numpy as np

from bayes_stenosis.analyses.reproduce.compare import published_text
from bayes_stenosis.analyses.reproduce.frequentist import TOST_ALPHA, tost
from bayes_stenosis.spec import ModelSpec
from bayes_stenosis.study import Study

__all__ = ["COLUMNS", "assumed_rho", "empty_row", "stat_columns", "threshold_row"]

#: Columns of reproduce.csv, in order (the report reads it by these names).
COLUMNS = (
    "study",
    "kind",
    "source",
    "time",
    "outcome",
    "comparison",
    "arm",
    "test",
    "published",
    "published_p",
    "recomputed",
    "estimate",
    "se",
    "df",
    "statistic",
    "recomputed_p",
    "recomputed_p_low",
    "recomputed_p_high",
    "ci_low",
    "ci_high",
    "margin",
    "tost_p",
    "tost_equivalent",
    "max_abs_difference_if_p_above_alpha",
    "min_abs_difference_if_p_below_alpha",
    "max_abs_difference_for_tost_equivalence",
    "status",
    "tolerance",
    "basis",
    "note",
)


def empty_row(study: Study, **kw) -> dict:
    """A row of :data:`COLUMNS`: NaN numbers, empty texts, then ``kw``."""
    row = dict.fromkeys(COLUMNS, np.nan)
    row.update({"study": study.id, "note": "", "basis": "", "tolerance": "", "recomputed": "", "published": ""})
    row.update(kw)
    return row


def stat_columns(res: dict, margin: float | None) -> dict:
    """Columns of a recomputed test (a ``result_from_se`` dict), with TOST at ``margin`` if there is one."""
    out = {
        "estimate": res["estimate"],
        "se": res["se"],
        "df": res["df"],
        "statistic": res["statistic"],
        "recomputed_p": res["p"],
        "ci_low": res["ci_low"],
        "ci_high": res["ci_high"],
    }
    if margin is not None:
        p = tost(res["estimate"], res["se"], res["df"], margin)
        out.update({"margin": margin, "tost_p": p, "tost_equivalent": bool(p < TOST_ALPHA)})
    return out


def threshold_row(study: Study, rec: dict) -> dict:
    """The identifying columns of a thresholds.csv row, status "not recomputable" until filled in."""
    return empty_row(
        study,
        kind="threshold",
        source=f"thresholds.csv row {int(rec['row'])}",
        time=float(rec["time"]),
        outcome=str(rec["outcome"]),
        comparison=rec["comparison"],
        arm=rec["arm"] or "",
        test=rec["test"],
        published=published_text(rec),
        published_p=rec["p_value"],
        status="not recomputable",
    )


def assumed_rho(spec: ModelSpec, instrument: str) -> float:
    """The baseline-follow-up correlation the recomputations assume: the spec's fixed value, else its prior mean."""
    fixed = spec.correlation.fixed_baseline_followup
    return float(fixed) if fixed is not None else float(spec.correlation.baseline_followup(instrument).mean)
