"""The ``bayes-stenosis`` command line: thin commands over the Python API.

Heavy imports (PyMC, ArviZ, matplotlib) happen inside the commands that need them, so ``--help``,
``--version`` and ``data ...`` start in a fraction of a second.

Exit codes: 0 success; 2 bad input (one line naming the file, row and field; no traceback);
3 diagnostics failed under ``--strict``; 1 anything unexpected.
"""

from __future__ import annotations

import functools
import platform
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bayes_stenosis import __version__
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

console = Console()
err_console = Console(stderr=True)

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
    from importlib.metadata import PackageNotFoundError, version

    table = Table(title="bayes-stenosis environment")
    table.add_column("component")
    table.add_column("version")
    table.add_row("bayes-stenosis", __version__)
    table.add_row("python", platform.python_version())
    for name in ("pymc", "pytensor", "arviz", "nutpie", "numpy", "scipy", "pandas", "xarray", "pydantic"):
        try:
            table.add_row(name, version(name))
        except PackageNotFoundError:
            table.add_row(name, "not installed")
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
            f"{k} [{a.role}] ({a.n_randomised if a.n_randomised else '?'})"
            for k, a in study.meta.arms.items()
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
        console.print(
            f"[yellow]arm_summaries.csv rows {rows}: incomplete (need n, mean and sd); kept, not used[/]"
        )
    console.print(f"[green]{loaded.folder}: valid[/] ({', '.join(loaded.levels_present()) or 'no usable evidence'})")


@data_app.command("template")
@_handle_errors
def data_template(
    out_dir: Annotated[Path, typer.Argument(help="Folder to create (must not exist or be empty).")],
) -> None:
    """Write an empty, valid study folder with comments, to fill in."""
    from bayes_stenosis.template import write_template

    write_template(out_dir)
    console.print(f"wrote a study template to {out_dir}; fill it in, then run: bayes-stenosis data validate {out_dir}")


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
