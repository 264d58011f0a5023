"""Commands over saved run folders: ``summarize``, ``export``, ``diagnose``, ``report``, and ``clean``.

Each reads only checked files of the run (a damaged one is a one-line error naming it, exit 2) and
checks its own output path before any work; an existing output is replaced only with ``--overwrite``.
``app.py`` registers them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bayes_stenosis.cli.common import (
    ExportFormat,
    console,
    handle_errors,
    print_headline,
    quiet_warnings,
    status,
)
from bayes_stenosis.errors import ConvergenceError, RunFolderError

OVERWRITE_HELP = "Replace the output file if it exists."


@handle_errors
def summarize(
    run: Annotated[Path, typer.Argument(help="A run folder written by fit.")],
    markdown: Annotated[
        Path | None, typer.Option(help="Also write the headline table as Markdown (headers in words) here.")
    ] = None,
    csv: Annotated[Path | None, typer.Option(help="Also write the decision table as CSV here.")] = None,
    overwrite: Annotated[bool, typer.Option(help=OVERWRITE_HELP)] = False,
) -> None:
    """Print the answer of a saved run: each cell's delta with its interval, P(equiv), the prior's P(equiv)
    and the decision, then the joint rows (reads only the run folder, and a sensitivity sweep beside it)."""
    from bayes_stenosis.outputs import headline_labels, summarize_run

    summary = summarize_run(run, markdown=markdown, csv=csv, overwrite=overwrite)
    manifest = summary.manifest
    labels = headline_labels(manifest)
    if "sensitivity" in summary.headline:  # short headers: the table must fit 120 columns
        labels |= {"prior_p_equiv": "prior", "sensitivity": "sweep"}
    print_headline(
        summary.headline,
        labels,
        f"{manifest['study']['id']}: {manifest['arms']['new']} minus {manifest['arms']['reference']}, change from "
        f"baseline (prior {manifest['prior_set']})",
        manifest["decision_rule"]["text"],
        summary.beyond,
    )
    if summary.sweep_note:
        console.print(escape(summary.sweep_note))
    for path in summary.written:
        console.print(f"wrote {escape(str(path))}")


@handle_errors
def export(
    run: Annotated[Path, typer.Argument(help="A run folder written by fit.")],
    format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="netcdf: posterior.nc; parquet / csv: the contrast draws; json: the normal approximations "
            "(posterior, and likelihood with the prior divided out); likelihood-csv: the likelihood "
            "approximation as one row per cell (yi, sei and covariances, for metafor / bayesmeta); draws-wide: "
            "one row per draw (.chain, .iteration, .draw), one column per cell in natural units.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="File to write (must not exist unless --overwrite).")],
    overwrite: Annotated[bool, typer.Option(help=OVERWRITE_HELP)] = False,
) -> None:
    """Export posterior draws of the contrasts for meta-analysts (reads only the run folder)."""
    from bayes_stenosis.outputs import export_run

    console.print(f"wrote {escape(str(export_run(run, format.value, out, overwrite=overwrite)))}")


@handle_errors
def diagnose(
    run: Annotated[Path, typer.Argument(help="A run folder written by fit.")],
    strict: Annotated[bool, typer.Option(help="Exit 3 when the verdict is fail.")] = False,
    all_rows: Annotated[
        bool, typer.Option("--all", help="List every quantity (default: the worst 12 per table).")
    ] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="First check every file of the run against its manifest (exit 2: damaged).")
    ] = False,
) -> None:
    """Convergence diagnostics of a saved run (reads only the run folder).

    R-hat, bulk/tail ESS and MCSE for every parameter and derived quantity, the same for every
    decision probability (from its indicator draws), divergences / E-BFMI / tree-depth saturation
    per chain, and the verdict with its thresholds.
    """
    quiet_warnings()
    from bayes_stenosis.diagnostics import near_threshold_note
    from bayes_stenosis.run import load_run

    loaded = load_run(run)
    if verify:
        verify_run(loaded)
    loaded.require_fit()
    diag = loaded.diagnostics()
    limit = None if all_rows else 12
    study_id = loaded.manifest["study"]["id"]
    console.print(parameter_table(diag.parameters, limit, study_id))
    if len(diag.decision_probabilities):
        console.print(probability_table(diag.decision_probabilities, limit))
    console.print(sampler_health_table(diag.sampler))
    note = near_threshold_note(diag.decision_probabilities)
    if note:
        console.print(f"note: {escape(note)}", soft_wrap=True)
    colour = {"ok": "green", "warning": "yellow", "fail": "red"}[diag.verdict.status]
    console.print(f"verdict: [{colour}]{escape(diag.verdict.line())}[/]", soft_wrap=True)
    if strict and diag.verdict.status == "fail":
        raise ConvergenceError(diag.verdict.line())


def verify_run(loaded) -> None:
    """Print what ``diagnose --verify`` found; raise :class:`RunFolderError` (exit 2) on any damage."""
    problems = loaded.verify()
    recorded = loaded.checksums
    if problems:
        for problem in problems:
            console.print(f"[red]damaged:[/] {escape(problem.line())}", soft_wrap=True)
        names = ", ".join(p.path.name for p in problems)
        raise RunFolderError(loaded.path, f"{len(problems)} damaged or missing file(s): {names}")
    if recorded is None:
        console.print("[yellow]verify: no checksums in this run (older version); checked for completeness only[/]")
    else:
        console.print(f"[green]verify: all {len(recorded)} files match the SHA-256 and size in manifest.json[/]")


def fmt(value, spec: str) -> str:
    return "-" if value != value else format(value, spec)


def parameter_table(params, limit: int | None, study_id: str) -> Table:
    """Parameters and derived quantities, worst first: highest R-hat, then lowest ESS."""
    params = params.copy()
    params["_order"] = params[["ess_bulk", "ess_tail"]].min(axis=1)
    params = params.sort_values(["r_hat", "_order"], ascending=[False, True], na_position="last")
    shown = params if limit is None else params.head(limit)
    table = Table(
        title=f"{study_id}: parameters and derived quantities ({len(params)}; "
        + ("all" if limit is None else f"worst {len(shown)}, --all for every row")
        + ")"
    )
    for col in ("quantity", "mean", "sd", "r_hat", "ess_bulk", "ess_tail", "mcse_mean"):
        table.add_column(col, justify="left" if col == "quantity" else "right", no_wrap=col == "quantity")
    for rec in shown.to_dict("records"):
        table.add_row(
            escape(str(rec["quantity"])),
            fmt(rec["mean"], ".4g"),
            fmt(rec["sd"], ".3g"),
            fmt(rec["r_hat"], ".3f"),
            fmt(rec["ess_bulk"], ".0f"),
            fmt(rec["ess_tail"], ".0f"),
            fmt(rec["mcse_mean"], ".2g"),
        )
    return table


def probability_table(probs, limit: int | None) -> Table:
    """Decision probabilities from their indicator draws, worst R-hat first."""
    probs = probs.assign(_r=probs["r_hat"].fillna(0.0)).sort_values(["_r", "ess_bulk"], ascending=[False, True])
    shown = probs if limit is None else probs.head(limit)
    table = Table(
        title=f"decision probabilities ({len(probs)}; "
        + ("all" if limit is None else f"worst {len(shown)}")
        + "): indicator draws; constant = never varies, so R-hat/ESS undefined"
    )
    for col in ("quantity", "probability", "MCSE", "r_hat", "ess_bulk", "note"):
        table.add_column(col, justify="left" if col in ("quantity", "note") else "right", no_wrap=True)
    for rec in shown.to_dict("records"):
        note = "constant" if rec["constant"] else ("within 2 MCSE of threshold" if rec["near_threshold"] else "")
        table.add_row(
            escape(rec["quantity"]),
            fmt(rec["mean"], ".4f"),
            fmt(rec["mcse_mean"], ".2g"),
            fmt(rec["r_hat"], ".3f"),
            fmt(rec["ess_bulk"], ".0f"),
            note,
        )
    return table


def sampler_health_table(sampler) -> Table:
    table = Table(title="sampler health per chain")
    for col in ("chain", "draws", "divergences", "E-BFMI", "tree-depth saturation"):
        table.add_column(col, justify="right")
    for rec in sampler.to_dict("records"):
        table.add_row(
            f"{rec['chain']:.0f}",
            f"{rec['draws']:.0f}",
            fmt(rec["divergences"], ".0f"),
            fmt(rec["ebfmi"], ".3f"),
            fmt(rec["treedepth_saturation_fraction"], ".1%"),
        )
    return table


@handle_errors
def report(
    run: Annotated[Path, typer.Argument(help="A run folder written by fit.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of RUN/report.html.")] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing report (RUN/report.html, or the --out file).")
    ] = False,
) -> None:
    """Write RUN/report.html: one self-contained page (images embedded, no network) for reviewers.

    A run that has a report already keeps it: pass --overwrite to rewrite it, or --out to write
    elsewhere. The whole run is verified first; reads only the run folder (and RUN/../sensitivity/
    when present) and draws missing plots into it.
    """
    quiet_warnings()
    from bayes_stenosis.outputs import render_report

    with status("writing the report"):
        path = render_report(run, out, overwrite=overwrite)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@handle_errors
def clean(
    path: Annotated[Path, typer.Argument(help="An output folder (e.g. outputs): searched recursively.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed.")] = False,
) -> None:
    """Remove what killed runs left behind under PATH (.NAME.tmp-*, .NAME.old-*, .NAME.lock).

    Hidden temporary folders and files of writers that are gone, lock files of no live process, and
    runs displaced by an unfinished --overwrite (put back when the run is missing, otherwise removed).
    Anything a running bayes-stenosis process still writes is left alone; runs are never touched.
    """
    from bayes_stenosis.run import clean_leftovers

    result = clean_leftovers(path, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for item in result.removed:
        console.print(f"{verb} {escape(str(item))}", soft_wrap=True)
    for item, destination in result.restored:
        verb_back = "would put back" if dry_run else "put back"
        console.print(f"{verb_back} {escape(str(item))} -> {escape(str(destination))}", soft_wrap=True)
    for item, why in result.kept:
        console.print(f"kept {escape(str(item))} ({why})", soft_wrap=True)
    if not (result.removed or result.restored or result.kept):
        console.print(f"nothing to clean under {escape(str(path))}")
