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
from bayes_stenosis.outputs.headline import BEYOND_LABEL, beyond_text, headline_markdown, headline_table
from bayes_stenosis.outputs.sweep import matching_sweep, missing_sweep_note
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
EXPORT_FORMATS = (*EXPORT_FILES, "json", "likelihood-csv", "draws-wide")


@dataclass
class Summary:
    """A run's decision table (all columns), its headline, its manifest, and the files written."""

    run: RunFolder
    decisions: pd.DataFrame
    headline: pd.DataFrame
    written: list[Path] = field(default_factory=list)
    #: without a sweep of this run beside it: what making one takes (command, fits, estimated minutes)
    sweep_note: str | None = None
    #: the any-cell line: P(some cell with evidence lies beyond its margin), its MCSE and the prior's
    beyond: str | None = None

    @property
    def manifest(self) -> dict:
        return self.run.manifest


def sweep_robustness(folder: Path, manifest: dict) -> pd.DataFrame | None:
    """``robustness.csv`` of the sensitivity sweep of the run's study files and spec beside the run
    (``RUN/../sensitivity/``, :func:`~bayes_stenosis.outputs.sweep.matching_sweep`), checked against the
    sweep's manifest; None without one."""
    sweep_folder, _ = matching_sweep(folder, manifest)
    return None if sweep_folder is None else read_csv_or_none(published_file(sweep_folder / "robustness.csv"))


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
    robustness = sweep_robustness(loaded.path, loaded.manifest)
    headline = headline_table(decisions, loaded.contrasts, loaded.manifest, robustness)
    summary = Summary(run=loaded, decisions=decisions, headline=headline)
    if robustness is None:
        summary.sweep_note = missing_sweep_note(loaded)
    table = decisions[[c for c in SUMMARY_COLUMNS if c in decisions.columns]]
    beyond = decisions[decisions["scope"] == "any_beyond_margin"]
    if len(beyond):
        summary.beyond = f"{BEYOND_LABEL} = {beyond_text(beyond.iloc[0], loaded.manifest)}"
    notes = [n for n in (summary.beyond, summary.sweep_note) if n]
    markdown_text = headline_markdown(headline, loaded.manifest, loaded.manifest["decision_rule"]["text"], notes)
    writers: dict[str, Callable[[Path], object]] = {
        "Markdown table": lambda tmp: tmp.write_text(markdown_text),
        "CSV table": lambda tmp: table.to_csv(tmp, index=False),
    }
    for target, kind in targets:
        summary.written.append(write_output_file(target, writers[kind], overwrite=overwrite, what=kind))
    return summary


def export_run(run: str | Path, format: str, out: str | Path, *, overwrite: bool = False) -> Path:
    """Export the draws (``netcdf``, ``parquet``, ``csv``: the run's files; ``draws-wide``: one row per draw,
    :func:`wide_draws`), the normal approximations with the run's settings (``json``) or the likelihood
    approximation as a table (``likelihood-csv``: :func:`likelihood_table`) for meta-analysts; return the
    file written.

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
    if format == "draws-wide":
        table = wide_draws(pd.read_parquet(loaded.file(EXPORT_FILES["parquet"])))
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


def wide_draws(long: pd.DataFrame) -> pd.DataFrame:
    """The contrast draws one row per draw (``.chain``, ``.iteration``, ``.draw``, as R's ``posterior``
    package reads a draws data frame), one column per cell in natural units, named as in
    ``approximations.json`` (``delta[time=4,outcome=ODI]``), cells in the run's order."""
    keys = [".chain", ".iteration", ".draw"]
    names = [f"delta[time={t:g},outcome={o}]" for t, o in zip(long["time"], long["outcome"], strict=True)]
    long = long.assign(name=names)
    order = list(dict.fromkeys(long["name"]))
    wide = long.pivot(index=keys, columns="name", values="delta_natural")[order]
    return wide.reset_index().rename_axis(columns=None)
