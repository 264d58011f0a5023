"""The ``bayes-stenosis`` command line: thin commands over the Python API.

Heavy imports (PyMC, ArviZ, matplotlib) happen inside the commands that need them, so ``--help``,
``--version`` and ``data ...`` start in a fraction of a second.

Exit codes: 0 success; 2 bad input (one line naming the file, row and field; an output path that
cannot be written or exists without ``--overwrite``; a run folder being written by another process;
a damaged file of a run; no traceback); 3 diagnostics failed under ``--strict``; 1 anything unexpected.
The commands over saved runs are in ``cli/runs.py``, ``data ...`` in ``cli/data.py``, the arguments and
options several commands share in ``cli/options.py``, what commands share otherwise in ``cli/common.py``.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bayes_stenosis import __version__
from bayes_stenosis.cli.common import (
    console,
    draw_counts,
    handle_errors,
    missing_sweep,
    print_decisions,
    print_robustness,
    print_statement_checks,
    quiet_warnings,
    status,
)
from bayes_stenosis.cli.data import data_app
from bayes_stenosis.cli.design import design
from bayes_stenosis.cli.options import (
    DEFAULT_STUDY,
    FitChains,
    FitDraws,
    FitMargins,
    FitOut,
    FitOverwrite,
    FitPlots,
    FitPrior,
    FitProgress,
    FitReport,
    FitRunName,
    FitSampler,
    FitSeed,
    FitSpec,
    FitStrict,
    FitTune,
    SpecOption,
    StudyArgument,
)
from bayes_stenosis.cli.runs import clean, diagnose, export, report, summarize
from bayes_stenosis.cli.synthesis import synthesize
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
app.add_typer(data_app, name="data")
app.add_typer(validation_app, name="validation")


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


@app.command()
@handle_errors
def fit(
    study: StudyArgument = DEFAULT_STUDY,
    model: FitSpec = "default",
    prior: FitPrior = None,
    margin: FitMargins = None,
    seed: FitSeed = None,
    chains: FitChains = None,
    draws: FitDraws = None,
    tune: FitTune = None,
    sampler: FitSampler = None,
    out: FitOut = Path("outputs"),
    name: FitRunName = None,
    overwrite: FitOverwrite = False,
    plots: FitPlots = True,
    report: FitReport = True,
    strict: FitStrict = False,
    progress: FitProgress = True,
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
        progress=progress and console.is_terminal,  # in a log, sampling gets a phase line instead of a bar
        status=status,
        plots=plots,
        report=report,
    )
    _print_fit_result(result)
    if strict and result.verdict_status == "fail":
        raise ConvergenceError(result.verdict_line)


def _print_fit_result(result) -> None:
    """What ``fit`` prints: the evidence per cell, the decision table, the statement checks, the
    robustness against a sweep, the diagnostics verdict and where the run folder is."""
    evidence = Table(title="Evidence used per cell")
    for col in ("time", "outcome", "evidence"):
        evidence.add_column(col)
    for rec in result.evidence.to_dict("records"):
        evidence.add_row(f"{rec['time']:g}", rec["outcome"], rec["evidence"])
    console.print(evidence)
    manifest = json.loads((result.folder / "manifest.json").read_text())
    print_decisions(
        result.decisions,
        manifest["decision_rule"]["text"],
        f"{manifest['study']['id']}: decisions ({manifest['arms']['new']} vs "
        f"{manifest['arms']['reference']}; prior {manifest['prior_set']})",
        *draw_counts(manifest),
    )
    print_statement_checks(result.statement_checks)
    print_robustness(result.robustness, result.robustness_fits, manifest["study"]["id"], missing_sweep(result.folder))
    colour = {"ok": "green", "warning": "yellow", "fail": "red"}[result.verdict_status]
    console.print(f"diagnostics: [{colour}]{result.verdict_line}[/]")
    console.print(f"run folder: [bold]{result.folder}[/]")
    if (result.folder / "report.html").is_file():
        console.print(f"report: {result.folder / 'report.html'}")


# the commands over saved run folders live in cli/runs.py
app.command()(summarize)
app.command()(export)
app.command()(diagnose)
app.command()(report)
app.command()(clean)
app.command()(synthesize)
app.command()(design)


@app.command()
@handle_errors
def sensitivity(
    study: StudyArgument = DEFAULT_STUDY,
    model: SpecOption = "default",
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
        """One closing line per step (each fit), with its duration: a piped sweep's log shows its progress."""
        close_step()
        holder["step"] = (message, time.perf_counter())
        if "live" in holder:
            holder["live"].update(f"[bold]{message}...[/]")

    def close_step() -> None:
        if "step" in holder:
            message, start = holder.pop("step")
            console.print(f"[dim]{message}: {time.perf_counter() - start:.1f} s[/]")

    with console.status("[bold]preparing...[/]") as live:
        holder["live"] = live
        try:
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
        finally:
            close_step()
    _print_sweep_robustness(result)
    _print_sweep_fits(result)
    _print_sweep_flips(result)
    t = result.timings
    console.print(
        f"{len(result.fits)} fits in {t['total']:.0f} s (compile {t['compile']:.0f} s, sampling {t['sampling']:.0f} s)"
    )
    console.print(f"sensitivity folder: [bold]{result.folder}[/]")


def _print_sweep_robustness(result) -> None:
    """Per cell and joint row of a sweep: the reference fit's P(equiv) and decision, the lowest and
    highest P(equiv) over the fits and how many fits call it equivalent."""
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


def _print_sweep_fits(result) -> None:
    """One row per fit of a sweep: its diagnostics and sampling time."""
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


def _print_sweep_flips(result) -> None:
    """The cell decisions that differ from the reference configuration (the first 30), then the fits that
    failed their diagnostics."""
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


@app.command()
@handle_errors
def reproduce(
    study: StudyArgument = DEFAULT_STUDY,
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


def main() -> None:
    """Console-script entry point.

    The process ends with ``os._exit`` once the command and every exit handler have run: after a fit the
    interpreter's own teardown (freeing the modules of PyMC, numba and matplotlib one by one) took another
    1.4 s, with every file already written and closed.
    """
    try:
        app()
        code: int | str | None = 0
    except SystemExit as stop:
        code = stop.code
    if isinstance(code, str):  # sys.exit("message"): printed to stderr, exit code 1, as Python does
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()  # logging's flush and any other handler, which os._exit would skip
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if code is None else int(code))


if __name__ == "__main__":  # pragma: no cover
    main()
