"""What ``bayes-stenosis summarize`` and ``export`` make from a saved run: the headline (each cell's delta
with its interval, P(equiv), the prior's, the decision; the range over a sensitivity sweep beside the run)
printed and as Markdown, the decision table as CSV, and the draws or normal approximation for meta-analysts.

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
from bayes_stenosis.outputs.headline import headline_markdown, headline_table
from bayes_stenosis.outputs.tables import read_csv_or_none
from bayes_stenosis.run import RunFolder, check_output_file, load_run, published_file, sha256_file, write_output_file

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
EXPORT_FORMATS = (*EXPORT_FILES, "json", "likelihood-csv")


@dataclass
class Summary:
    """A run's decision table (all columns), its headline, its manifest, and the files written."""

    run: RunFolder
    decisions: pd.DataFrame
    headline: pd.DataFrame
    written: list[Path] = field(default_factory=list)

    @property
    def manifest(self) -> dict:
        return self.run.manifest


def sweep_robustness(folder: Path) -> pd.DataFrame | None:
    """``robustness.csv`` of the study's sensitivity sweep beside the run (``RUN/../sensitivity/``), checked
    against the sweep's manifest; None without one."""
    for candidate in (folder / "robustness.csv", folder.parent / "sensitivity" / "robustness.csv"):
        frame = read_csv_or_none(published_file(candidate))
        if frame is not None:
            return frame
    return None


def summarize_run(
    run: str | Path, *, markdown: str | Path | None = None, csv: str | Path | None = None, overwrite: bool = False
) -> Summary:
    """Read a run's decision table and headline; write the headline as Markdown (headers in words) and/or
    the decision table as CSV (the summary columns, machine names) when asked.

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
    loaded.require_fit()
    decisions = loaded.decisions
    headline = headline_table(decisions, loaded.contrasts, loaded.manifest, sweep_robustness(loaded.path))
    summary = Summary(run=loaded, decisions=decisions, headline=headline)
    table = decisions[[c for c in SUMMARY_COLUMNS if c in decisions.columns]]
    markdown_text = headline_markdown(headline, loaded.manifest, loaded.manifest["decision_rule"]["text"])
    writers: dict[str, Callable[[Path], object]] = {
        "Markdown table": lambda tmp: tmp.write_text(markdown_text),
        "CSV table": lambda tmp: table.to_csv(tmp, index=False),
    }
    for target, kind in targets:
        summary.written.append(write_output_file(target, writers[kind], overwrite=overwrite, what=kind))
    return summary


def export_run(run: str | Path, format: str, out: str | Path, *, overwrite: bool = False) -> Path:
    """Export the draws (``netcdf``, ``parquet``, ``csv``), the normal approximations with the run's
    settings (``json``) or the likelihood approximation as a table (``likelihood-csv``: :func:`likelihood_table`)
    for meta-analysts; return the file written.

    The run's file is checked against its manifest before it is copied, and the copy against the
    same digest after: a damaged file is never exported.

    Raises
    ------
    InputError
        An unknown format; ``out`` exists (without ``overwrite``) or cannot be written, checked first; the
        run has no likelihood approximation (``likelihood-csv``).
    RunFolderError
        Not a run, or the file to export is damaged (named).
    """
    if format not in EXPORT_FORMATS:
        raise InputError(
            None, f"--format must be {', '.join(EXPORT_FORMATS[:-1])} or {EXPORT_FORMATS[-1]} (got {format!r})"
        )
    target = check_output_file(out, overwrite=overwrite, what="export")
    loaded = load_run(run)
    loaded.require_fit()
    if format == "likelihood-csv":
        table = likelihood_table(loaded.read_json("approximations.json"), loaded.path)
        return write_output_file(target, lambda tmp: table.to_csv(tmp, index=False), overwrite=overwrite, what="export")
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


def likelihood_table(approximation: dict, run: Path) -> pd.DataFrame:
    """The likelihood approximation (the prior divided out) as one row per cell, for metafor's ``rma.mv``
    or bayesmeta: ``yi`` and ``sei`` (natural units), ``vi`` = ``sei``^2, the unit and direction, the
    standardized estimate, then the covariance with every other cell (``cov:<name>``, the ``V`` matrix)
    and what it is (``method``, ``exact``).

    Raises
    ------
    InputError
        The run has no likelihood approximation (its reason is named).
    """
    lik = approximation.get("likelihood") or {}
    if lik.get("status") != "ok":
        reason = lik.get("reason", "the run was written before likelihood approximations were kept")
        raise InputError(run / "approximations.json", f"no likelihood approximation: {reason}")
    index = {name: i for i, name in enumerate(approximation["names"])}
    rows = []
    for k, name in enumerate(lik["names"]):
        i = index[name]
        row = {
            "name": name,
            "time": approximation["cells"][i]["time"],
            "outcome": approximation["cells"][i]["outcome"],
            "unit": approximation["units"][i],
            "direction": approximation["direction"][i],
            "yi": lik["mean_natural"][k],
            "sei": lik["se_natural"][k],
            "vi": lik["covariance_natural"][k][k],
            "yi_std": lik["mean_std"][k],
            "sei_std": lik["covariance_std"][k][k] ** 0.5,
        }
        row |= {f"cov:{other}": lik["covariance_natural"][k][j] for j, other in enumerate(lik["names"])}
        row |= {"approximates": "likelihood (prior divided out)", "exact": lik["exact"], "method": lik["method"]}
        rows.append(row)
    return pd.DataFrame(rows)
