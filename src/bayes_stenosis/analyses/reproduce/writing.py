"""Writing a reproduction: ``reproduce.csv`` and ``reproduce.md`` into a folder, or the whole
``<out>/<study>/reproduce/`` folder with its manifest (``bayes-stenosis reproduce``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_stenosis import __version__
from bayes_stenosis.analyses.reproduce.table import reproduce_table
from bayes_stenosis.provenance import provenance
from bayes_stenosis.run import atomic_run_folder, check_output_folder, write_json
from bayes_stenosis.spec import ModelSpec, load_spec
from bayes_stenosis.study import Study, load_study

__all__ = ["ReproduceResult", "markdown", "run_reproduce", "write_reproduce"]


@dataclass
class ReproduceResult:
    study_id: str
    folder: Path | None
    table: pd.DataFrame


def write_reproduce(folder: Path, study: Study, spec: ModelSpec, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Write ``reproduce.csv`` and ``reproduce.md`` into an existing folder (e.g. a run folder being
    written); returns the table."""
    table = reproduce_table(study, spec) if table is None else table
    table.to_csv(folder / "reproduce.csv", index=False)
    (folder / "reproduce.md").write_text(markdown(table, study))
    return table


def markdown(table: pd.DataFrame, study: Study) -> str:
    """``reproduce.md``: the table for reading, with the basis, notes and tolerance of each row in one column."""
    lines = [
        f"# {study.id}: published vs recomputed frequentist tests",
        "",
        f"{study.meta.study.citation}",
        "",
        "Recomputed from the entered data (bayes-stenosis reproduce). Differences are new minus reference "
        f"({study.new_arm} minus {study.reference_arm}). 'consistent' = the recomputed p interval (over the "
        "rounding of the entered numbers) overlaps the published p (+- half its last decimal), or lies on "
        "the published side of alpha; TOST at the study margin, alpha 0.05. Rows marked ASSUMED use cited "
        "reference SDs and the spec's correlation, not trial data.",
        "",
        "| week | outcome | comparison | test | published | recomputed | TOST p | status | basis / note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(v, fmt="{:.3g}"):
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return ""
        return fmt.format(v) if isinstance(v, float) else str(v).replace("|", "/")

    for rec in table.to_dict("records"):
        extra = []
        if isinstance(rec["max_abs_difference_if_p_above_alpha"], float) and np.isfinite(
            rec["max_abs_difference_if_p_above_alpha"]
        ):
            extra.append(f"P>alpha admits |d| <= {rec['max_abs_difference_if_p_above_alpha']:.3g}")
        if isinstance(rec["max_abs_difference_for_tost_equivalence"], float) and np.isfinite(
            rec["max_abs_difference_for_tost_equivalence"]
        ):
            extra.append(f"TOST needs |d| < {rec['max_abs_difference_for_tost_equivalence']:.3g}")
        note = "; ".join(x for x in (rec["basis"], *extra, rec["note"], rec["tolerance"]) if x)
        lines.append(
            f"| {cell(rec['time'], '{:g}')} | {cell(rec['outcome'])} | {cell(rec['comparison'])}"
            f"{(' ' + rec['arm']) if isinstance(rec['arm'], str) and rec['arm'] else ''} | {cell(rec['test'])} | "
            f"{cell(rec['published'])} | {cell(rec['recomputed'])} | {cell(rec['tost_p'])} | {cell(rec['status'])} | "
            f"{cell(note)} |"
        )
    counts = table["status"].value_counts().to_dict()
    lines += ["", "Status counts: " + ", ".join(f"{k}: {v}" for k, v in counts.items()), ""]
    return "\n".join(lines)


def run_reproduce(
    study: str | Path = "farpour2022",
    *,
    spec: str | Path = "default",
    out: str | Path = "outputs",
    overwrite: bool = False,
) -> ReproduceResult:
    """Write ``out/<study>/reproduce/`` (reproduce.csv, reproduce.md, manifest.json with their checksums)
    atomically; an existing folder is replaced only with ``overwrite``."""
    loaded = load_study(study)
    model_spec, spec_sha = load_spec(spec)
    destination = check_output_folder(Path(out) / loaded.id / "reproduce", overwrite=overwrite, what="reproduce folder")
    table = reproduce_table(loaded, model_spec)
    with atomic_run_folder(destination, overwrite=overwrite, what="reproduce folder") as tmp:
        write_reproduce(tmp, loaded, model_spec, table)
        manifest = {
            **provenance(__version__),
            "kind": "reproduce",
            "study": {"id": loaded.id, "folder": str(loaded.folder), "sha256": loaded.sha256()},
            "spec": {"name": model_spec.name, "path": str(spec), "sha256": spec_sha},
        }
        write_json(tmp / "manifest.json", manifest)
    return ReproduceResult(study_id=loaded.id, folder=destination, table=table)
