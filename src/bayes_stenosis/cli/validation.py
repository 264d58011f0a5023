"""``bayes-stenosis validation``: the calibration (SBC) and coverage studies of ``bayes_stenosis.calibration``.

Bad options give one line on stderr and exit code 2, like the rest of the command line; a finished
SBC run whose package-model cases fail exits 1. VALIDATION.md lists the runs these commands made.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from bayes_stenosis.errors import InputError

# click's UsageError (bad option, missing argument, unknown command, bad value), which typer does not
# export by name; its BadParameter is one
UsageError = typer.BadParameter.__mro__[1]


class OneLineErrors(TyperGroup):
    """A subcommand's usage errors and bad input as one line ``error: <command>: <message>``, exit code 2."""

    def invoke(self, ctx: typer.Context):
        with one_line_errors(ctx):
            return super().invoke(ctx)


@contextmanager
def one_line_errors(ctx: typer.Context):
    """Turn a usage error or bad input raised inside into one line on stderr and exit code 2."""
    try:
        yield
    except UsageError as exc:
        message = f"{(exc.ctx or ctx).command_path}: {exc.format_message()}"
        typer.echo(f"error: {' '.join(message.split())}", err=True)
        raise typer.Exit(2) from None
    except InputError as exc:
        typer.echo(f"error: {exc.one_line()}", err=True)
        raise typer.Exit(2) from None


validation_app = typer.Typer(
    cls=OneLineErrors,
    help="Calibration (SBC) and coverage studies: sbc | coverage | coverage-merge | plot.",
    no_args_is_help=True,
)


def log(message: str) -> None:
    print(message, flush=True)


def names_in(value: str, known, option: str) -> list[str]:
    """The comma-separated names of ``value``, each one of ``known`` (else a one-line usage error)."""
    names = [s for s in value.split(",") if s]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise typer.BadParameter(
            f"unknown: {', '.join(unknown)} (expected {', '.join(known)})", param_hint=f"'{option}'"
        )
    return names


def parse_trial_range(value: str | None, trials: int) -> tuple[int, int] | None:
    """``START:STOP`` with ``0 <= START < STOP <= trials``."""
    if value is None:
        return None
    try:
        first, stop = (int(x) for x in value.split(":"))
    except ValueError:
        raise typer.BadParameter(f"{value!r}: expected START:STOP", param_hint="'--trial-range'") from None
    if not 0 <= first < stop <= trials:
        raise typer.BadParameter(f"{value!r} is not within the {trials} trials planned", param_hint="'--trial-range'")
    return first, stop


@validation_app.command()
def sbc(
    mode: Annotated[str, typer.Option(help="quick (the test suite's) or full (the release figures).")] = "quick",
    cases: Annotated[str | None, typer.Option(help="Comma-separated case names (default: every case).")] = None,
    wrong: Annotated[
        bool,
        typer.Option(
            "--wrong",
            help="Also run each case's deliberately wrong likelihood (se_as_sd; direction_flipped for the "
            "flagship's statements).",
        ),
    ] = False,
    replicates: Annotated[int | None, typer.Option(help="Override the mode's replicate count (trial runs).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the first case (case i: seed + i).")] = 20181804,
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("outputs/validation/sbc"),
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Refit on a Dask LocalCluster of this many processes (default: serial)."),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Refit on the Dask scheduler at this address (default: serial).")
    ] = None,
) -> None:
    """Simulation-based calibration of each likelihood term (serially, or on Dask with --workers or
    --scheduler: the same ranks, each refitted replicate saved as it arrives, a killed run resumed)."""
    import contextlib
    import functools

    from bayes_stenosis.calibration import CASES, MODES, run_sbc

    names_in(mode, list(MODES), "--mode")
    names = names_in(cases, list(CASES), "--cases") if cases is not None else list(CASES)
    variants = (None, "se_as_sd") if wrong else (None,)
    if workers is None and scheduler is None:
        engine = contextlib.nullcontext((None, None))
    else:
        from bayes_stenosis.engine import dask_client

        engine = dask_client(workers=workers, scheduler=scheduler)
    with engine as (client, _):
        runner = None
        if client is not None:
            from bayes_stenosis.calibration.sbc_engine import run_case_on_engine

            runner = functools.partial(run_case_on_engine, client=client, store=out / ".sbc_trials")
        results = run_sbc(mode, names, out, seed, wrong=variants, replicates=replicates, log=log, case_runner=runner)
    correct_ok = all(r.passed for r in results if r.wrong is None)
    log(f"SBC {'passed' if correct_ok else 'FAILED'} for the package model; results in {out}")
    raise typer.Exit(0 if correct_ok else 1)


@validation_app.command()
def plot(folder: Annotated[Path, typer.Argument(help="A finished SBC run folder.")]) -> None:
    """Redraw the rank histograms of a finished SBC run folder."""
    from bayes_stenosis.calibration import replot

    if not (folder / "sbc_summary.json").is_file():
        raise InputError(folder, "not an SBC run folder (no sbc_summary.json)")
    for path in replot(folder):
        log(f"wrote {path}")


@validation_app.command()
def coverage(
    trials: Annotated[int, typer.Option(help="Simulated trials per truth.")] = 500,
    truths: Annotated[str, typer.Option(help="Comma-separated: prior, zero, margin.")] = "prior,zero,margin",
    n: Annotated[int, typer.Option("--n", help="Patients per arm.")] = 20,
    level: Annotated[str, typer.Option(help="Evidence fitted: arm_summary, arm_summary_change, contrast or ipd.")] = (
        "arm_summary"
    ),
    times: Annotated[str, typer.Option(help="Comma-separated follow-up times (weeks).")] = "8",
    seed: Annotated[int, typer.Option(help="Seed of the truths and patients.")] = 2024,
    outcomes: Annotated[str, typer.Option(help="ODI and/or RMDQ.")] = "ODI,RMDQ",
    outcome_corr: Annotated[float, typer.Option(help="Patients' correlation between outcomes at one visit.")] = 0.75,
    draws: Annotated[int, typer.Option(help="Draws per chain.")] = 500,
    tune: Annotated[int, typer.Option(help="Tuning steps per chain.")] = 500,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("outputs/validation/coverage"),
    trial_range: Annotated[
        str | None, typer.Option(help="START:STOP, fit only these trials of the run (join with coverage-merge).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Fit the trials on a Dask LocalCluster of this many processes (default: serial)."),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Fit the trials on the Dask scheduler at this address (default: serial).")
    ] = None,
) -> None:
    """Interval coverage and equivalence decisions over simulated trials (serially, or on Dask with --workers
    or --scheduler: the same rows, each fitted trial saved as it arrives, a killed run resumed)."""
    import contextlib

    from bayes_stenosis.calibration import COVERAGE_LEVELS, COVERAGE_OUTCOMES, TRUTH_KINDS

    kinds = names_in(truths, TRUTH_KINDS, "--truths")
    names_in(level, COVERAGE_LEVELS, "--level")
    chosen = names_in(outcomes, list(COVERAGE_OUTCOMES), "--outcomes")
    try:
        follow_up = [float(t) for t in times.split(",") if t]
    except ValueError:
        raise typer.BadParameter(f"{times!r}: expected comma-separated numbers", param_hint="'--times'") from None
    span = parse_trial_range(trial_range, trials)
    if workers is None and scheduler is None:
        engine = contextlib.nullcontext((None, None))
    else:
        from bayes_stenosis.engine import dask_client

        engine = dask_client(workers=workers, scheduler=scheduler)
    with engine as (client, _):
        run_coverage_kinds(
            kinds, trials, out, seed, level, n, draws, tune, chosen, outcome_corr, follow_up, span, client
        )


def run_coverage_kinds(kinds, trials, out, seed, level, n, draws, tune, chosen, outcome_corr, follow_up, span, client):
    """One coverage run per truth kind, logged (serially, or on ``client``'s workers)."""
    import json

    from bayes_stenosis.calibration import coverage_run

    for kind in kinds:
        log(f"coverage, truths: {kind}, {trials} trials, n = {n}/arm, {level} ...")
        summary = coverage_run(
            trials,
            kind,
            out,
            seed=seed,
            level=level,
            n=n,
            draws=draws,
            tune=tune,
            outcomes=chosen,
            outcome_corr=outcome_corr,
            follow_up=follow_up,
            trial_range=span,
            log=log,
            client=client,
        )
        log(json.dumps(summary["cells"], indent=1))


@validation_app.command("coverage-merge")
def coverage_merge(
    out: Annotated[Path, typer.Argument(help="Folder to write the merged run to.")],
    parts: Annotated[list[Path], typer.Argument(help="The parts' output folders.")],
    truths: Annotated[str, typer.Option(help="Comma-separated truth kinds to merge.")] = "prior",
) -> None:
    """Join the trial ranges of one coverage run."""
    from bayes_stenosis.calibration import TRUTH_KINDS, merge_coverage

    for kind in names_in(truths, TRUTH_KINDS, "--truths"):
        try:
            summary = merge_coverage(parts, kind, out)
        except FileNotFoundError as exc:
            raise InputError(exc.filename, "not found (not a part of a coverage run?)") from None
        except ValueError as exc:
            raise InputError(None, str(exc)) from None
        log(f"coverage {kind}: {summary['trials_done']} trials merged into {out}")
