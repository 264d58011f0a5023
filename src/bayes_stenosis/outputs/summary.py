"""What ``bayes-stenosis summarize`` and ``export`` make from a saved run: the decision table as CSV or
Markdown, and the draws or normal approximation for meta-analysts.

Both check their output paths before reading the run (an existing file is replaced only with
``overwrite``), read only checked files of the run, and write each output completely or not at all.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bayes_stenosis.errors import InputError, RunFolderError
from bayes_stenosis.run import RunFolder, check_output_file, load_run, sha256_file, write_output_file

#: Columns of the summary table, in order (those the run has).
SUMMARY_COLUMNS = (
    "scope",
    "time",
    "outcome",
    "evidence",
    "margin",
    "prob_equivalence",
    "mcse_prob_equivalence",
    "prob_equivalence_prior",
    "prob_noninferiority",
    "prob_superiority",
    "prob_harm_beyond_margin",
    "decision",
)

#: ``export --format``: the run file each format copies (json is built from approximations.json).
EXPORT_FILES = {"netcdf": "posterior.nc", "parquet": "draws_contrasts.parquet", "csv": "draws_contrasts.csv"}
EXPORT_FORMATS = (*EXPORT_FILES, "json")


@dataclass
class Summary:
    """A run's decision table (all columns), its manifest, and the files written."""

    run: RunFolder
    decisions: pd.DataFrame
    written: list[Path] = field(default_factory=list)

    @property
    def manifest(self) -> dict:
        return self.run.manifest


def markdown_table(table: pd.DataFrame, rule_text: str) -> str:
    """The summary columns as a Markdown table, then the decision rule."""
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for rec in table.to_dict("records"):
        cells = ("" if v != v else (f"{v:.4g}" if isinstance(v, float) else str(v)) for v in rec.values())
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", f"Rule: {rule_text}"]) + "\n"


def table_writer(table: pd.DataFrame, rule_text: str, *, markdown: bool) -> Callable[[Path], None]:
    """What writes the summary table to a (temporary) path, as Markdown or CSV."""

    def write(path: Path) -> None:
        if markdown:
            path.write_text(markdown_table(table, rule_text))
        else:
            table.to_csv(path, index=False)

    return write


def summarize_run(
    run: str | Path, *, markdown: str | Path | None = None, csv: str | Path | None = None, overwrite: bool = False
) -> Summary:
    """Read a run's decision table; write it as Markdown and/or CSV when asked.

    Raises
    ------
    OutputPathError
        An output exists (without ``overwrite``) or cannot be written; checked before the run is read.
    RunFolderError
        Not a run, or ``decisions.csv`` / ``manifest.json`` damaged.
    """
    targets = [
        (check_output_file(t, overwrite=overwrite, what=kind), kind)
        for t, kind in ((markdown, "Markdown table"), (csv, "CSV table"))
        if t is not None
    ]
    loaded = load_run(run)
    summary = Summary(run=loaded, decisions=loaded.decisions)
    table = summary.decisions[[c for c in SUMMARY_COLUMNS if c in summary.decisions.columns]]
    rule_text = loaded.manifest["decision_rule"]["text"]
    for target, kind in targets:
        write = table_writer(table, rule_text, markdown=kind == "Markdown table")
        summary.written.append(write_output_file(target, write, overwrite=overwrite, what=kind))
    return summary


def export_run(run: str | Path, format: str, out: str | Path, *, overwrite: bool = False) -> Path:
    """Export the draws (``netcdf``, ``parquet``, ``csv``) or the normal approximation with the run's
    settings (``json``) for meta-analysts; return the file written.

    The run's file is checked against its manifest before it is copied, and the copy against the
    same digest after: a damaged file is never exported.

    Raises
    ------
    InputError
        An unknown format; ``out`` exists (without ``overwrite``) or cannot be written, checked first.
    RunFolderError
        Not a run, or the file to export is damaged (named).
    """
    if format not in EXPORT_FORMATS:
        raise InputError(None, f"--format must be {', '.join(EXPORT_FORMATS[:-1])} or json (got {format!r})")
    target = check_output_file(out, overwrite=overwrite, what="export")
    loaded = load_run(run)
    if format == "json":
        approx = loaded.read_json("approximations.json")
        approx.setdefault("metadata", {})["manifest"] = {
            k: loaded.manifest.get(k) for k in ("study", "prior_set", "margins", "sampler", "interval", "created_utc")
        }
        text = json.dumps(approx, indent=2) + "\n"
        return write_output_file(target, lambda tmp: tmp.write_text(text), overwrite=overwrite, what="export")
    source = loaded.file(EXPORT_FILES[format])
    expected = (loaded.checksums or {}).get(EXPORT_FILES[format], {}).get("sha256")

    def copy(tmp: Path) -> None:
        shutil.copyfile(source, tmp)
        if expected is not None and sha256_file(tmp) != expected:  # changed while being copied
            raise RunFolderError(source, "changed while it was being exported; nothing was written")

    return write_output_file(target, copy, overwrite=overwrite, what="export")
