"""The ``bayes-stenosis`` command line: thin commands over the Python API.

Heavy imports (PyMC, ArviZ, matplotlib) happen inside the commands that need them, so ``--help``,
``--version`` and ``data ...`` start in a fraction of a second.

Exit codes: 0 success; 2 bad input (one line naming the file, row and field; no traceback);
3 diagnostics failed under ``--strict``; 1 anything unexpected.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bayes_stenosis import __version__
from bayes_stenosis.cli.validation import validation_app
from bayes_stenosis.errors import ConvergenceError, InputError

app = typer.Typer(
    name="bayes-stenosis",
    help="Bayesian reanalysis of two-arm repeated-measures trials: posterior treatment differences "
    "and the probability of equivalence within clinically important margins.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)
data_app = typer.Typer(help="Check, list and create study folders.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(validation_app, name="validation")

# Piped output (logs, CI) gets 120 columns so tables are not truncated at rich's default of 80.
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

DEFAULT_STUDY = "farpour2022"


def _handle_errors(func):
    """Map package errors to exit codes with one line on stderr (works under CliRunner too)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            err_console.print(f"error: {exc.one_line()}", markup=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except ConvergenceError as exc:
            err_console.print(f"diagnostics failed: {exc}", markup=False, soft_wrap=True)
            raise typer.Exit(3) from None

    return wrapper


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"bayes-stenosis {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Bayesian reanalysis of two-arm repeated-measures trials."""


# ---------------------------------------------------------------------------------------------
# info and data
# ---------------------------------------------------------------------------------------------


@app.command()
@_handle_errors
def info() -> None:
    """Print the versions of Python and the key dependencies."""
    from bayes_stenosis.provenance import package_versions

    table = Table(title="bayes-stenosis environment")
    table.add_column("component")
    table.add_column("version")
    for name, value in package_versions().items():
        table.add_row(name, value)
    console.print(table)


@data_app.command("list")
@_handle_errors
def data_list() -> None:
    """List the bundled studies and the evidence levels each one holds."""
    from bayes_stenosis.resources import bundled_study_ids
    from bayes_stenosis.study import load_study

    table = Table(title="Bundled studies")
    for col in ("id", "title", "arms (n randomised)", "outcomes", "follow-up (weeks)", "evidence"):
        table.add_column(col)
    for study_id in bundled_study_ids():
        study = load_study(study_id)
        arms = ", ".join(
            f"{k} ({a.role}, n={a.n_randomised if a.n_randomised else '?'})" for k, a in study.meta.arms.items()
        )
        table.add_row(
            study.id + (" (default)" if study.id == DEFAULT_STUDY else ""),
            study.meta.study.title,
            arms,
            ", ".join(study.outcomes),
            ", ".join(f"{t:g}" for t in study.times),
            ", ".join(study.levels_present()) or "none usable",
        )
    console.print(table)


@data_app.command("validate")
@_handle_errors
def data_validate(
    study: Annotated[str, typer.Argument(help="A bundled study id or a study folder path.")] = DEFAULT_STUDY,
) -> None:
    """Check a study folder against the schema; print which evidence each cell would use."""
    from bayes_stenosis.study import load_study

    loaded = load_study(study)
    cells = loaded.evidence_by_cell()
    table = Table(title=f"{loaded.id}: evidence per follow-up cell")
    for col in ("time", "outcome", "evidence used", "threshold rows (between/within)", "note"):
        table.add_column(col)
    for rec in cells.to_dict("records"):
        note = "threshold rows superseded" if rec["thresholds_superseded"] else ""
        table.add_row(
            f"{rec['time']:g}",
            rec["outcome"],
            rec["evidence"],
            f"{rec['threshold_between_rows']}/{rec['threshold_within_rows']}",
            note,
        )
    console.print(table)
    incomplete = loaded.incomplete_arm_summaries()
    if len(incomplete):
        rows = ", ".join(str(r) for r in incomplete["row"])
        console.print(f"[yellow]arm_summaries.csv rows {rows}: incomplete (need n, mean and sd); kept, not used[/]")
    console.print(f"[green]{loaded.folder}: valid[/] ({', '.join(loaded.levels_present()) or 'no usable evidence'})")


@data_app.command("template")
@_handle_errors
def data_template(
    out_dir: Annotated[Path, typer.Argument(help="Folder to create (must not exist or be empty).")],
) -> None:
    """Write an empty, valid study folder with comments, to fill in."""
    from bayes_stenosis.study import write_template

    write_template(out_dir)
    console.print(f"wrote a study template to {out_dir}; fill it in, then run: bayes-stenosis data validate {out_dir}")


# ---------------------------------------------------------------------------------------------
# fit and friends
# ---------------------------------------------------------------------------------------------


def _quiet_warnings() -> None:
    import warnings

    # PyTensor's C backend warns once per process that it found no BLAS; it is irrelevant here
    warnings.filterwarnings("ignore", message=".*PyTensor could not link to a BLAS.*")
    warnings.filterwarnings("ignore", category=FutureWarning)


def _status(message: str):
    return console.status(f"[bold]{message}...[/]")


def print_decisions(decisions, rule_text: str, title: str) -> None:
    """The decision table: one row per time x outcome, then the joint rows (fits 80 columns)."""
    table = Table(title=title, caption=f"rule: {rule_text}", min_width=60)
    headers = (
        "week",
        "outcome",
        "margin",
        "P(equiv)",
        "MCSE",
        "prior P(equiv)",
        "P(non-inf)",
        "P(superior)",
        "decision",
    )
    for col in headers:
        table.add_column(col, justify="left" if col in ("outcome", "decision") else "right", no_wrap=True)

    def fmt(value, digits=3):
        return "-" if value is None or value != value else f"{value:.{digits}f}"

    for rec in decisions.to_dict("records"):
        scope = rec.get("scope", "cell")
        time = "all" if rec["time"] != rec["time"] else f"{rec['time']:g}"
        label = {"cell": rec["outcome"], "joint_time": "all outcomes", "joint_all": "all cells"}.get(
            scope, "any cell >= m"
        )
        if scope == "any_beyond_margin":
            table.add_row(
                time, label, "", fmt(rec["prob_not_equivalent"]), fmt(rec["mcse_prob_not_equivalent"]), "", "", "", ""
            )
            continue
        margin = rec.get("margin")
        table.add_row(
            time,
            label,
            "" if margin is None or margin != margin else f"{margin:g}",
            fmt(rec["prob_equivalence"]),
            fmt(rec.get("mcse_prob_equivalence")),
            fmt(rec.get("prob_equivalence_prior")),
            fmt(rec.get("prob_noninferiority")),
            fmt(rec.get("prob_superiority")),
            str(rec.get("decision", "")),
        )
    console.print(table)


@app.command()
@_handle_errors
def fit(
    study: Annotated[str, typer.Argument(help="A bundled study id or a study folder path.")] = DEFAULT_STUDY,
    model: Annotated[str, typer.Option("--model", help="Bundled spec name or a spec .toml path.")] = "default",
    prior: Annotated[str | None, typer.Option("--prior", help="Named prior set (default: the spec's).")] = None,
    seed: Annotated[int | None, typer.Option(help="Run seed (default: the spec's).")] = None,
    chains: Annotated[int | None, typer.Option(help="Chains (default: the spec's).")] = None,
    draws: Annotated[int | None, typer.Option(help="Draws per chain (default: the spec's).")] = None,
    tune: Annotated[int | None, typer.Option(help="Tuning steps per chain (default: the spec's).")] = None,
    sampler: Annotated[str | None, typer.Option(help="nutpie or pymc (default: the spec's).")] = None,
    margin: Annotated[
        list[str] | None,
        typer.Option("--margin", help="Override a margin, OUTCOME=VALUE (natural units)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Root folder for run folders.")] = Path("outputs"),
    name: Annotated[str | None, typer.Option("--name", help="Run folder name (default: spec-prior-seed).")] = None,
    strict: Annotated[bool, typer.Option(help="Exit 3 when diagnostics fail.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run folder.")] = False,
    plots: Annotated[bool, typer.Option(help="Write plots.")] = True,
    report: Annotated[bool, typer.Option(help="Write report.html (the self-contained reviewer report).")] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Fit a study (default: the flagship farpour2022) and write a run folder."""
    _quiet_warnings()
    from bayes_stenosis.run import parse_margins
    from bayes_stenosis.workflow import fit as run_fit

    margins = parse_margins(margin)
    with console.status("[bold]loading PyMC...[/]"):
        import pymc  # noqa: F401
    result = run_fit(
        study,
        spec=model,
        prior_set=prior,
        seed=seed,
        chains=chains,
        draws=draws,
        tune=tune,
        sampler=sampler,
        out=out,
        run_name=name,
        overwrite=overwrite,
        strict=False,
        margins=margins,
        progress=progress,
        status=_status,
        plots=plots,
        report=report,
    )
    ev = Table(title="Evidence used per cell")
    for col in ("time", "outcome", "evidence"):
        ev.add_column(col)
    for rec in result.evidence.to_dict("records"):
        ev.add_row(f"{rec['time']:g}", rec["outcome"], rec["evidence"])
    console.print(ev)
    import json

    manifest = json.loads((result.folder / "manifest.json").read_text())
    print_decisions(
        result.decisions,
        manifest["decision_rule"]["text"],
        f"{manifest['study']['id']}: decisions ({manifest['arms']['new']} vs "
        f"{manifest['arms']['reference']}; prior {manifest['prior_set']})",
    )
    colour = {"ok": "green", "warning": "yellow", "fail": "red"}[result.verdict_status]
    console.print(f"diagnostics: [{colour}]{result.verdict_line}[/]")
    console.print(f"run folder: [bold]{result.folder}[/]")
    if (result.folder / "report.html").is_file():
        console.print(f"report: {result.folder / 'report.html'}")
    if strict and result.verdict_status == "fail":
        raise ConvergenceError(result.verdict_line)


def _load_run(run: Path):
    import json

    import pandas as pd

    from bayes_stenosis.errors import RunFolderError
    from bayes_stenosis.run import check_run_folder, read_manifest

    folder = check_run_folder(run)
    manifest = read_manifest(folder)
    if not (folder / "decisions.csv").is_file():
        raise RunFolderError(folder, "not a complete run folder: missing decisions.csv")
    return folder, manifest, pd.read_csv(folder / "decisions.csv"), json


@app.command()
@_handle_errors
def summarize(
    run: Annotated[Path, typer.Argument(help="A run folder written by fit.")],
    markdown: Annotated[Path | None, typer.Option(help="Also write the table as Markdown here.")] = None,
    csv: Annotated[Path | None, typer.Option(help="Also write the table as CSV here.")] = None,
) -> None:
    """Print the decision table of a saved run (reads only the run folder)."""
    folder, manifest, table, _ = _load_run(run)
    print_decisions(
        table,
        manifest["decision_rule"]["text"],
        f"{manifest['study']['id']}: {manifest['arms']['new']} vs {manifest['arms']['reference']} "
        f"(prior {manifest['prior_set']}; {manifest['interval']['prob']:.0%} {manifest['interval']['kind'].upper()})",
    )
    columns = [
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
    ]
    columns = [c for c in columns if c in table.columns]
    for target, writer in ((markdown, "md"), (csv, "csv")):
        if target is None:
            continue
        if Path(target).exists():
            raise InputError(target, "exists already; choose another path (nothing was overwritten)")
        if writer == "csv":
            table[columns].to_csv(target, index=False)
        else:
            lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            for rec in table[columns].to_dict("records"):
                lines.append(
                    "| "
                    + " | ".join(
                        "" if v != v else (f"{v:.4g}" if isinstance(v, float) else str(v)) for v in rec.values()
                    )
                    + " |"
                )
            lines.append("")
            lines.append(f"Rule: {manifest['decision_rule']['text']}")
            Path(target).write_text("\n".join(lines) + "\n")
        console.print(f"wrote {target}")


@app.command()
@_handle_errors
def export(
    run: Annotated[Path, typer.Argument(help="A run folder written by fit.")],
    format: Annotated[str, typer.Option("--format", help="netcdf, parquet, csv or json.")],
    out: Annotated[Path, typer.Option("--out", help="File to write (must not exist).")],
) -> None:
    """Export posterior draws of the contrasts for meta-analysts (reads only the run folder)."""
    import shutil

    folder, manifest, _, json = _load_run(run)
    if out.exists():
        raise InputError(out, "exists already; choose another path (nothing was overwritten)")
    if format == "netcdf":
        shutil.copyfile(folder / "posterior.nc", out)
    elif format in ("parquet", "csv"):
        shutil.copyfile(folder / f"draws_contrasts.{format}", out)
    elif format == "json":
        approx = json.loads((folder / "approximations.json").read_text())
        approx.setdefault("metadata", {})["manifest"] = {
            k: manifest[k] for k in ("study", "prior_set", "margins", "sampler", "interval", "created_utc")
        }
        out.write_text(json.dumps(approx, indent=2) + "\n")
    else:
        raise InputError(None, f"--format must be netcdf, parquet, csv or json (got {format!r})")
    console.print(f"wrote {out}")


@app.command()
@_handle_errors
def diagnose(
    run: Annotated[Path, typer.Argument(help="A run folder written by fit.")],
    strict: Annotated[bool, typer.Option(help="Exit 3 when the verdict is fail.")] = False,
    all_rows: Annotated[
        bool, typer.Option("--all", help="List every quantity (default: the worst 12 per table).")
    ] = False,
) -> None:
    """Convergence diagnostics of a saved run (reads only the run folder).

    R-hat, bulk/tail ESS and MCSE for every parameter and derived quantity, the same for every
    decision probability (from its indicator draws), divergences / E-BFMI / tree-depth saturation
    per chain, and the verdict with its thresholds.
    """
    _quiet_warnings()
    from rich.markup import escape

    from bayes_stenosis.diagnostics import load_run_diagnostics, near_threshold_note
    from bayes_stenosis.run import check_run_folder, read_manifest

    folder = check_run_folder(run)
    manifest = read_manifest(folder)
    diag = load_run_diagnostics(folder)
    limit = None if all_rows else 12

    def fmt(value, spec):
        return "-" if value != value else format(value, spec)

    params = diag.parameters.copy()
    # worst first: highest R-hat, then lowest ESS
    params["_order"] = params[["ess_bulk", "ess_tail"]].min(axis=1)
    params = params.sort_values(["r_hat", "_order"], ascending=[False, True], na_position="last")
    shown = params if limit is None else params.head(limit)
    table = Table(
        title=f"{manifest['study']['id']}: parameters and derived quantities ({len(params)}; "
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
    console.print(table)

    probs = diag.decision_probabilities
    if len(probs):
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
        console.print(table)

    table = Table(title="sampler health per chain")
    for col in ("chain", "draws", "divergences", "E-BFMI", "tree-depth saturation"):
        table.add_column(col, justify="right")
    for rec in diag.sampler.to_dict("records"):
        table.add_row(
            f"{rec['chain']:.0f}",
            f"{rec['draws']:.0f}",
            fmt(rec["divergences"], ".0f"),
            fmt(rec["ebfmi"], ".3f"),
            fmt(rec["treedepth_saturation_fraction"], ".1%"),
        )
    console.print(table)
    note = near_threshold_note(diag.decision_probabilities)
    if note:
        console.print(f"note: {escape(note)}", soft_wrap=True)
    colour = {"ok": "green", "warning": "yellow", "fail": "red"}[diag.verdict.status]
    console.print(f"verdict: [{colour}]{escape(diag.verdict.line())}[/]", soft_wrap=True)
    if strict and diag.verdict.status == "fail":
        raise ConvergenceError(diag.verdict.line())


@app.command()
@_handle_errors
def report(
    run: Annotated[Path, typer.Argument(help="A run folder written by fit.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of RUN/report.html.")] = None,
) -> None:
    """Write RUN/report.html: one self-contained page (images embedded, no network) for reviewers.

    Reads only the run folder (and RUN/../sensitivity/ when present); draws missing plots first.
    """
    _quiet_warnings()
    from bayes_stenosis.outputs import render_report

    with _status("writing the report"):
        path = render_report(run, out)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


# ---------------------------------------------------------------------------------------------
# sensitivity and reproduce (issue 8; src/bayes_stenosis/sensitivity.py, reproduce.py)
# ---------------------------------------------------------------------------------------------


@app.command()
@_handle_errors
def sensitivity(
    study: Annotated[str, typer.Argument(help="A bundled study id or a study folder path.")] = DEFAULT_STUDY,
    model: Annotated[str, typer.Option("--model", help="Bundled spec name or a spec .toml path.")] = "default",
    seed: Annotated[int | None, typer.Option(help="Run seed (default: the spec's).")] = None,
    chains: Annotated[int | None, typer.Option(help="Chains per fit (default: the spec's).")] = None,
    draws: Annotated[int | None, typer.Option(help="Draws per chain (default: the spec's).")] = None,
    tune: Annotated[int | None, typer.Option(help="Tuning steps per chain (default: the spec's).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Root folder; writes OUT/<study>/sensitivity/.")] = Path("outputs"),
    overwrite: Annotated[bool, typer.Option(help="Replace an existing sensitivity folder.")] = False,
    plots: Annotated[bool, typer.Option(help="Write sensitivity.png.")] = True,
) -> None:
    """Refit over the spec's sensitivity grid (prior sets x correlations, x outcome pooling; margin sets on the
    same draws) and show whether each decision survives."""
    _quiet_warnings()
    from bayes_stenosis.analyses import run_sensitivity

    with console.status("[bold]loading PyMC...[/]"):
        import pymc  # noqa: F401
    holder = {}

    def status(message: str) -> None:
        if "live" in holder:
            holder["live"].update(f"[bold]{message}...[/]")

    with console.status("[bold]preparing...[/]") as live:
        holder["live"] = live
        result = run_sensitivity(
            study,
            spec=model,
            seed=seed,
            chains=chains,
            draws=draws,
            tune=tune,
            out=out,
            overwrite=overwrite,
            plots=plots,
            status=status,
        )
    robust = Table(
        title=f"{result.manifest['study']['id']}: does the answer survive its assumptions? "
        f"P(equiv) over {len(result.fits)} fits, study margins"
    )
    for col in ("week", "outcome", "reference", "lowest (fit)", "highest", "equivalent in"):
        robust.add_column(col, justify="left" if col in ("outcome", "lowest (fit)") else "right")
    for rec in result.robustness.to_dict("records"):
        week = "all" if rec["time"] != rec["time"] else f"{rec['time']:g}"
        robust.add_row(
            week,
            str(rec["outcome"]),
            f"{rec['prob_equivalence_reference']:.3f} {rec['decision_reference']}",
            f"{rec['prob_equivalence_min']:.3f} ({rec['configuration_min']})",
            f"{rec['prob_equivalence_max']:.3f}",
            f"{rec['n_equivalent']} of {rec['n_fits']}",
        )
    console.print(robust)
    table = Table(title=f"{result.manifest['study']['id']}: fits of the sensitivity grid")
    for col in ("configuration", "diagnostics", "divergences", "max R-hat", "min bulk ESS", "sampling s"):
        table.add_column(col, justify="left" if col in ("configuration", "diagnostics") else "right")
    for rec in result.fits.to_dict("records"):
        table.add_row(
            rec["configuration"],
            rec["diagnostics_status"],
            str(rec["divergences"]),
            f"{rec['max_rhat']:.3f}",
            f"{rec['min_ess_bulk']:.0f}",
            f"{rec['sampling_seconds']:.1f}",
        )
    console.print(table)
    flips = result.flips
    if len(flips):
        console.print(
            f"[yellow]{len(flips)} cell decisions differ from the reference "
            f"({result.manifest['reference_configuration']['label']}, study margins):[/]"
        )
        for rec in flips.head(30).to_dict("records"):
            console.print(
                f"  week {rec['time']:g} {rec['outcome']}: {rec['configuration']}, margins {rec['margin_set']} "
                f"-> {rec['decision']} (P(equiv) {rec['prob_equivalence']:.3f})",
                markup=False,
            )
    else:
        console.print("[green]no cell decision differs from the reference configuration[/]")
    failed = result.manifest["diagnostics_failures"]
    if failed:
        console.print(f"[red]{len(failed)} fit(s) failed diagnostics:[/] {', '.join(failed)}", markup=True)
    t = result.timings
    console.print(
        f"{len(result.fits)} fits in {t['total']:.0f} s (compile {t['compile']:.0f} s, sampling {t['sampling']:.0f} s)"
    )
    console.print(f"sensitivity folder: [bold]{result.folder}[/]")


@app.command()
@_handle_errors
def reproduce(
    study: Annotated[str, typer.Argument(help="A bundled study id or a study folder path.")] = DEFAULT_STUDY,
    model: Annotated[str, typer.Option("--model", help="Spec giving the assumed correlations.")] = "default",
    out: Annotated[Path, typer.Option("--out", help="Root folder; writes OUT/<study>/reproduce/.")] = Path("outputs"),
    overwrite: Annotated[bool, typer.Option(help="Replace an existing reproduce folder.")] = False,
) -> None:
    """Recompute the published frequentist tests (t, Welch, paired t, TOST) from the entered data."""
    from bayes_stenosis.analyses import run_reproduce

    result = run_reproduce(study, spec=model, out=out, overwrite=overwrite)
    table = Table(title=f"{result.study_id}: published vs recomputed")
    for col in ("week", "outcome", "comparison", "published", "recomputed", "status"):
        table.add_column(col, justify="left")
    for rec in result.table.to_dict("records"):
        table.add_row(
            f"{rec['time']:g}",
            str(rec["outcome"]),
            str(rec["comparison"]),
            str(rec["published"]),
            str(rec["recomputed"]),
            str(rec["status"]),
        )
    console.print(table)
    console.print(f"wrote [bold]{result.folder}[/] (reproduce.csv, reproduce.md)")


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
