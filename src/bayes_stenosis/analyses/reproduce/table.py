"""``reproduce_table``: the published-vs-recomputed table of a study, one step per kind of evidence."""

from __future__ import annotations

import pandas as pd

from bayes_stenosis.analyses.reproduce.arm_summary import arm_summary_rows
from bayes_stenosis.analyses.reproduce.contrast import contrast_rows
from bayes_stenosis.analyses.reproduce.rows import COLUMNS
from bayes_stenosis.analyses.reproduce.statements import statement_rows
from bayes_stenosis.spec import ModelSpec
from bayes_stenosis.study import Study, contrast_standard_errors

__all__ = ["reproduce_table"]


def reproduce_table(study: Study, spec: ModelSpec) -> pd.DataFrame:
    """The published-vs-recomputed table of a study (pure: reads the study, writes nothing).

    Rows in order: the arm-summary cells (tests recomputed from n, mean and SD, compared with the cell's
    statements), the contrasts (the printed p against the printed estimate and CI/SE), then the threshold
    statements no arm-summary cell answers (their meaning under assumed SDs).
    """
    rows = arm_summary_rows(study, spec)
    contrasts = contrast_standard_errors(study) if len(study.evidence["contrast"]) else pd.DataFrame()
    sizes, size_source = study.randomised_arm_sizes()
    rows += contrast_rows(study, spec, contrasts, sizes, size_source)
    rows += statement_rows(study, spec, contrasts, sizes, size_source)
    return pd.DataFrame(rows, columns=list(COLUMNS))
