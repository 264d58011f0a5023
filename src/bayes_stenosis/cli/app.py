"""The ``bayes-stenosis`` command line: thin commands over the Python API.

Heavy imports (PyMC, ArviZ, matplotlib) happen inside the commands that need them, so ``--help``,
``--version`` and ``data ...`` start in a fraction of a second.

Exit codes: 0 success; 2 bad input (one line naming the file, row and field; an output path that
cannot be written or exists without ``--overwrite``; a run folder being written by another process;
a damaged file of a run; no traceback); 3 diagnostics failed under ``--strict``; 1 anything unexpected.
The commands over saved runs are in ``cli/runs.py``, what commands share in ``cli/common.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bayes_stenosis import __version__
from bayes_stenosis.cli.common import (
    PRIOR_HELP,
    Sampler,
    complete_prior,
    console,
    draw_counts,
    handle_errors,
    print_decisions,
    print_robustness,
    print_statement_checks,
    quiet_warnings,
    status,
)
from bayes_stenosis.cli.runs import clean, diagnose, export, report, summarize
from bayes_stenosis.cli.validation import validation_app
from bayes_stenosis.errors import ConvergenceError

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

DEFAULT_STUDY = "farpour2022"
#: Help panels of ``fit``'s options.
MODEL_PANEL, SAMPLER_PANEL, OUTPUT_PANEL, RUN_PANEL = "Model and prior", "Sampler", "Output", "While running"


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
@handle_errors
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
@handle_errors
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
@handle_errors
def data_validate(
    study: Annotated[str, typer.Argument(help="A bundled study id or a study folder path.")] = DEFAULT_STUDY,
    model: Annotated[str, typer.Option("--model", help="Bundled spec name or a spec .toml path.")] = "default",
) -> None:
    """Check a study folder as `fit` would (schema, rows, scales, margins, arm sizes, evidence);
    print which evidence each cell would use."""
    from bayes_stenosis.study import load_study

    loaded = load_study(study)
    if loaded.levels_present():  # an empty folder (a fresh template) is valid, with nothing to fit yet
        with console.status("[bold]checking the study against the model spec...[/]"):
            from bayes_stenosis.run import prepare_fit

            prepare_fit(loaded, spec=model)
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
@handle_errors
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


@app.command()
@handle_errors
def fit(
    study: Annotated[str, typer.Argument(help="A bundled study id or a study folder path.")] = DEFAULT_STUDY,
    model: Annotated[
        str, typer.Option("--model", help="Bundled spec name or a spec .toml path.", rich_help_panel=MODEL_PANEL)
    ] = "default",
    prior: Annotated[
        str | None,
        typer.Option("--prior", help=PRIOR_HELP, autocompletion=complete_prior, rich_help_panel=MODEL_PANEL),
    ] = None,
    margin: Annotated[
        list[str] | None,
        typer.Option("--margin", help="Override a margin, OUTCOME=VALUE (natural units).", rich_help_panel=MODEL_PANEL),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Run seed (default: the spec's).", rich_help_panel=SAMPLER_PANEL)
    ] = None,
    chains: Annotated[
        int | None, typer.Option(help="Chains (default: the spec's).", rich_help_panel=SAMPLER_PANEL)
    ] = None,
    draws: Annotated[
        int | None, typer.Option(help="Draws per chain (default: the spec's).", rich_help_panel=SAMPLER_PANEL)
    ] = None,
    tune: Annotated[
        int | None, typer.Option(help="Tuning steps per chain (default: the spec's).", rich_help_panel=SAMPLER_PANEL)
    ] = None,
    sampler: Annotated[
        Sampler | None, typer.Option(help="NUTS implementation (default: the spec's).", rich_help_panel=SAMPLER_PANEL)
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Root folder for run folders.", rich_help_panel=OUTPUT_PANEL)
    ] = Path("outputs"),
    name: Annotated[
        str | None,
        typer.Option("--name", help="Run folder name (default: spec-prior-seed).", rich_help_panel=OUTPUT_PANEL),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing run folder.", rich_help_panel=OUTPUT_PANEL)
    ] = False,
    plots: Annotated[bool, typer.Option(help="Write plots.", rich_help_panel=OUTPUT_PANEL)] = True,
    report: Annotated[
        bool,
        typer.Option(help="Write report.html (the self-contained reviewer report).", rich_help_panel=OUTPUT_PANEL),
    ] = True,
    strict: Annotated[bool, typer.Option(help="Exit 3 when diagnostics fail.", rich_help_panel=RUN_PANEL)] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.", rich_help_panel=RUN_PANEL)] = True,
) -> None:
    """Fit a study (default: the flagship farpour2022) and write a run folder."""
    quiet_warnings()
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
        sampler=None if sampler is None else sampler.value,
        out=out,
        run_name=name,
        overwrite=overwrite,
        strict=False,
        margins=margins,
        progress=progress,
        status=status,
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
        *draw_counts(manifest),
    )
    print_statement_checks(result.statement_checks)
    print_robustness(result.robustness, result.robustness_fits, manifest["study"]["id"])
    colour = {"ok": "green", "warning": "yellow", "fail": "red"}[result.verdict_status]
    console.print(f"diagnostics: [{colour}]{result.verdict_line}[/]")
    console.print(f"run folder: [bold]{result.folder}[/]")
    if (result.folder / "report.html").is_file():
        console.print(f"report: {result.folder / 'report.html'}")
    if strict and result.verdict_status == "fail":
        raise ConvergenceError(result.verdict_line)


# the commands over saved run folders live in cli/runs.py
app.command()(summarize)
app.command()(export)
app.command()(diagnose)
app.command()(report)
app.command()(clean)


# ---------------------------------------------------------------------------------------------
# sensitivity and reproduce (issue 8; src/bayes_stenosis/sensitivity.py, reproduce.py)
# ---------------------------------------------------------------------------------------------


@app.command()
@handle_errors
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
    """Refit over the grid of the spec's \\[sensitivity] table (prior sets x correlations, x outcome pooling;
    margin sets on the same draws) and show whether each decision survives."""
    quiet_warnings()
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
@handle_errors
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
