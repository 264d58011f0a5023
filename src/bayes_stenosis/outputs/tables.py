"""Tables for people: numbers rounded, probabilities as :func:`~bayes_stenosis.decisions.probability_text`,
column names in words (:data:`COLUMN_LABELS`), and the ``{"columns", "rows"}`` form the report's template
draws."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_stenosis.decisions import probability_text

#: Column names of the run's CSV files, in words (the report's headers and ``summarize --markdown``).
COLUMN_LABELS = {
    "scope": "scope",
    "time": "week",
    "outcome": "outcome",
    "evidence": "evidence",
    "margin": "margin",
    "prob_equivalence": "P(equiv)",
    "mcse_prob_equivalence": "MCSE",
    "prob_equivalence_prior": "prior P(equiv)",
    "prob_noninferiority": "P(non-inferior)",
    "prob_noninferiority_prior": "prior P(non-inferior)",
    "prob_superiority": "P(new better)",
    "prob_superiority_prior": "prior P(new better)",
    "prob_harm_beyond_margin": "P(new worse by ≥ margin)",
    "prob_not_equivalent": "P(|δ| ≥ margin)",
    "decision": "decision",
    "decision_within_2_mcse_of_threshold": "within 2 MCSE of the threshold",
    "mean_natural": "mean",
    "median_natural": "median",
    "lower_natural": "lower",
    "upper_natural": "upper",
    "mcse_mean_natural": "MCSE mean",
    "mcse_lower_natural": "MCSE lower",
    "mcse_upper_natural": "MCSE upper",
    "mean_std": "mean (SMD)",
    "lower_std": "lower (SMD)",
    "upper_std": "upper (SMD)",
    "quantity": "quantity",
    "mean": "mean",
    "sd": "SD",
    "r_hat": "R-hat",
    "ess_bulk": "bulk ESS",
    "ess_tail": "tail ESS",
    "mcse_mean": "MCSE mean",
    "mcse_sd": "MCSE SD",
    "constant": "constant",
    "near_threshold": "near the threshold",
    "prob_equivalence_reference": "P(equiv), reference fit",
    "decision_reference": "decision, reference fit",
    "prob_equivalence_min": "lowest P(equiv)",
    "configuration_min": "fit with the lowest",
    "prob_equivalence_max": "highest P(equiv)",
    "configuration_max": "fit with the highest",
    "n_fits": "fits",
    "n_equivalent": "fits 'equivalent'",
    "n_failed_diagnostics": "fits failing diagnostics",
    "equivalent_in_every_fit": "equivalent in every fit",
}

#: Integer-like statistics shown without decimals, and R-hat with three.
SPECIAL_FORMATS = {"r_hat": ".3f", "ess_bulk": ".0f", "ess_tail": ".0f", "mcse_prob_equivalence": ".4f"}


def png_data_uri(path: Path) -> str:
    """An image file as a ``data:`` URI (the report embeds every image: no network)."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def fmt(value, digits: int = 3) -> str:
    """A table cell: numbers to ``digits`` significant digits, NaN/None empty, text escaped later."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else ""
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            return ""
        v = float(value)
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.{digits}e}"
        if v == int(v) and abs(v) < 1e5:
            return f"{int(v)}"
        return f"{v:.{digits}g}" if abs(v) < 1 else f"{v:.{max(digits, len(str(int(abs(v)))))}g}"
    return str(value)


def table_context(
    frame: pd.DataFrame | None,
    columns: list[str] | None = None,
    digits: int = 3,
    *,
    labels: Mapping[str, str] | None = None,
    probabilities: Mapping[str, int] | None = None,
) -> dict | None:
    """``{"columns": [...], "rows": [[...], ...]}`` for the template (already formatted).

    Parameters
    ----------
    frame, columns
        The table and the columns to show, in order (those it has).
    digits
        Significant digits of numbers.
    labels
        Header text per column (default :data:`COLUMN_LABELS`; a column not in it keeps its name).
    probabilities
        Columns to show with :func:`~bayes_stenosis.decisions.probability_text` (rounded, or a bound
        when no draw disagrees), each with its number of draws; the column's MCSE is ``mcse_<name>``.
    """
    if frame is None or not len(frame):
        return None
    source = frame  # the MCSE columns of probabilities, whether shown or not
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    labels = COLUMN_LABELS if labels is None else labels
    probabilities = probabilities or {}

    def cell(column, value, i):
        if column in probabilities and isinstance(value, float | np.floating):
            mcse = source[f"mcse_{column}"].iloc[i] if f"mcse_{column}" in source else float("nan")
            return probability_text(float(value), float(mcse), probabilities[column])
        spec = SPECIAL_FORMATS.get(str(column))
        if spec and isinstance(value, float | np.floating) and math.isfinite(float(value)):
            return format(float(value), spec)
        return fmt(value, digits)

    rows = [
        [cell(c, v, i) for c, v in zip(frame.columns, rec, strict=True)]
        for i, rec in enumerate(frame.itertuples(index=False))
    ]
    return {"columns": [labels.get(str(c), str(c)) for c in frame.columns], "rows": rows}


def read_csv_or_none(path: Path | None) -> pd.DataFrame | None:
    """A CSV file, or None when it is missing, empty or unreadable (optional results of other commands)."""
    if path is None or not path.is_file():
        return None
    try:
        return pd.read_csv(path, keep_default_na=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return None
