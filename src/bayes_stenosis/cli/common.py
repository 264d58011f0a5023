"""What every command shares: the consoles, the mapping of package errors to exit codes, the decision table.

Exit codes: 0 success; 2 bad input (one line naming the file, row and field, or the output path, or the
damaged file of a run; no traceback); 3 diagnostics failed under ``--strict``; 1 anything unexpected.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import sys
import time
import tomllib
import warnings

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from bayes_stenosis.errors import ConvergenceError, InputError, UnverifiedRunWarning
from bayes_stenosis.resources import resolve_spec

# Piped output (logs, CI) gets 120 columns so tables are not truncated at rich's default of 80.
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


class Sampler(enum.StrEnum):
    """``--sampler``: the NUTS implementation (nutpie, numba-compiled, is the spec's default)."""

    nutpie = "nutpie"
    pymc = "pymc"


class ExportFormat(enum.StrEnum):
    """``export --format``."""

    netcdf = "netcdf"
    parquet = "parquet"
    csv = "csv"
    json = "json"
    likelihood_csv = "likelihood-csv"
    draws_wide = "draws-wide"


def bundled_prior_sets() -> list[str]:
    """The prior sets of the bundled default spec (read with tomllib: ``--help`` stays fast)."""
    try:
        with open(resolve_spec("default"), "rb") as handle:
            return list(tomllib.load(handle).get("prior_sets", {}))
    except (OSError, tomllib.TOMLDecodeError):
        return []


def complete_prior(incomplete: str) -> list[str]:
    """Shell completion of ``--prior``: the bundled spec's prior sets (a spec of your own may add others)."""
    return [name for name in bundled_prior_sets() if name.startswith(incomplete)]


PRIOR_HELP = (
    "Named prior set on the treatment difference (default: the spec's): "
    + " | ".join(bundled_prior_sets())
    + " in the bundled specs; a spec of your own may define others."
)


def handle_errors(func):
    """Map package errors to exit codes with one line on stderr (works under CliRunner too); print a
    run's :class:`~bayes_stenosis.errors.UnverifiedRunWarning` as one ``warning:`` line."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UnverifiedRunWarning)
                return func(*args, **kwargs)
        except InputError as exc:
            err_console.print(f"error: {exc.one_line()}", markup=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except ConvergenceError as exc:
            err_console.print(f"diagnostics failed: {exc}", markup=False, soft_wrap=True)
            raise typer.Exit(3) from None
        finally:  # outside catch_warnings again: re-emitted warnings are shown, not recorded
            for item in caught:
                if issubclass(item.category, UnverifiedRunWarning):
                    err_console.print(f"warning: {item.message}", markup=False, soft_wrap=True)
                else:
                    warnings.showwarning(item.message, item.category, item.filename, item.lineno)

    return wrapper


def quiet_warnings() -> None:
    # PyTensor's C backend warns once per process that it found no BLAS; it is irrelevant here
    warnings.filterwarnings("ignore", message=".*PyTensor could not link to a BLAS.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    # the command prints the diagnostics verdict itself (run.DiagnosticsWarning is for notebooks)
    warnings.filterwarnings("ignore", message=".*the diagnostics failed.*")


@contextlib.contextmanager
def status(message: str):
    """A phase of a command: a spinner with the elapsed time while it runs, then one line with its duration.

    A long phase (a cold compile, the plots) is never a silent stretch, and the log of a piped run says
    where the time went. The phase may call the yielded function with a word on how it went (e.g. "loaded
    from the disk cache"); it is added to the closing line.
    """
    start, outcome = time.perf_counter(), []
    if not console.is_terminal:  # a log: the closing line alone (a transient spinner leaves blank lines)
        yield outcome.append
    else:
        columns = (SpinnerColumn(), TextColumn("[bold]{task.description}..."), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as spinner:
            spinner.add_task(message, total=None)
            yield outcome.append
    how = f", {outcome[-1]}" if outcome else ""
    console.print(f"[dim]{message}: {time.perf_counter() - start:.1f} s{how}[/]")


_DECISION_HEADERS = (
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


def print_decisions(decisions, rule_text: str, title: str, n_draws: int = 0, n_prior_draws: int = 0) -> None:
    """The decision table: one row per time x outcome, then the joint rows (fits 80 columns).

    Probabilities whose draws never disagree print as bounds (``> 0.999``: see
    :func:`bayes_stenosis.decisions.probability_text`); ``n_draws`` / ``n_prior_draws`` are the
    posterior and prior draw counts behind them. "Some cell beyond its margin" goes under the table,
    not in a P(equiv) column.
    """
    table = Table(title=title, caption=f"rule: {rule_text}", min_width=60)
    for col in _DECISION_HEADERS:
        table.add_column(col, justify="left" if col in ("outcome", "decision") else "right", no_wrap=True)
    beyond = None
    for rec in decisions.to_dict("records"):
        if rec.get("scope", "cell") == "any_beyond_margin":
            beyond = rec
            continue
        table.add_row(*_decision_row(rec, n_draws, n_prior_draws))
    console.print(table)
    if beyond is not None:
        console.print(
            "P(some cell with evidence lies beyond its margin) = "
            f"{_probability_cell(beyond, 'prob_not_equivalent', n_draws)} "
            f"(MCSE {_mcse_text(beyond.get('mcse_prob_not_equivalent'))})"
        )


def _decision_row(rec: dict, n_draws: int, n_prior_draws: int) -> tuple[str, ...]:
    """One row of the decision table (a cell or a joint row), in the order of :data:`_DECISION_HEADERS`."""
    scope = rec.get("scope", "cell")
    margin = rec.get("margin")
    return (
        "all" if rec["time"] != rec["time"] else f"{rec['time']:g}",
        {"cell": rec["outcome"], "joint_time": "all outcomes", "joint_all": "all cells"}[scope],
        "" if margin is None or margin != margin else f"{margin:g}",
        _probability_cell(rec, "prob_equivalence", n_draws),
        _mcse_text(rec.get("mcse_prob_equivalence")),
        _probability_cell(rec, "prob_equivalence_prior", n_prior_draws),
        _probability_cell(rec, "prob_noninferiority", n_draws),
        _probability_cell(rec, "prob_superiority", n_draws),
        str(rec.get("decision", "")),
    )


def _probability_cell(rec: dict, name: str, n_draws: int) -> str:
    """The probability ``rec[name]`` as printed (with its MCSE ``rec["mcse_<name>"]`` and ``n_draws``)."""
    from bayes_stenosis.decisions import probability_text

    # the decision threshold applies to P(equiv): a value just under it is not printed as equal to it
    threshold = rec.get("decision_threshold") if name == "prob_equivalence" else None
    return probability_text(
        rec.get(name, float("nan")), rec.get(f"mcse_{name}", float("nan")), n_draws, threshold=threshold
    )


def _mcse_text(value) -> str:
    """A Monte Carlo standard error to 4 decimals; ``-`` when there is none."""
    return "-" if value is None or value != value else f"{value:.4f}"


def draw_counts(manifest: dict) -> tuple[int, int]:
    """Posterior and prior draw counts of a run (the decision table's two probability sources)."""
    sampler = manifest.get("sampler", {})
    return int(sampler.get("chains", 0)) * int(sampler.get("draws", 0)), int(sampler.get("prior_draws_decisions", 0))


def print_statement_checks(checks) -> None:
    """One line on how probable the reported statements are under the prior and under the fitted model."""
    if checks is None:
        return
    whole = checks[checks["scope"] == "all statements"].iloc[0]
    console.print(
        f"reported statements ({whole['statement']}): prior predictive P(all as reported) = "
        f"{whole['prob_reproduced_prior']:.4f}, posterior predictive = {whole['prob_reproduced_posterior']:.3f} "
        "(a small prior value is a prior-data conflict; statement_checks.csv has each statement)"
    )


def missing_sweep(folder) -> str | None:
    """For a run without a sweep of its own beside it: the sweep's command, fits and estimated cost (None when
    the run folder cannot tell)."""
    from bayes_stenosis.errors import RunFolderError
    from bayes_stenosis.outputs.sweep import missing_sweep_note
    from bayes_stenosis.run import load_run

    try:
        return missing_sweep_note(load_run(folder))
    except RunFolderError:
        return None


def print_robustness(robustness, n_fits: int, study: str, missing: str | None = None) -> None:
    """Does "equivalent" survive its assumptions? Per cell and joint row: P(equiv) of this fit's
    configuration, its range over the sweep's fits, and how many fits call it equivalent. Without a sweep
    of the same study and spec, say how to run one (``missing``: the run's own command, fits and cost)."""
    if robustness is None and missing is not None:
        console.print(f"[yellow]{escape(missing)}[/]")
        return
    if robustness is None:
        console.print(
            "[yellow]not yet checked against its assumptions[/]: `bayes-stenosis sensitivity "
            f"{study}` refits over prior sets, outcome pooling, correlations and, for threshold statements, "
            "the test assumed, the follow-up / baseline SD ratio and the share analysed; `fit` then shows "
            "the range of each P(equiv)"
        )
        return
    table = Table(title=f'Does "equivalent" survive its assumptions? ({n_fits} fits of the sensitivity sweep)')
    for col in ("week", "outcome", "P(equiv) range", "equivalent in", "lowest under"):
        table.add_column(col, justify="left" if col in ("outcome", "lowest under") else "right")
    for rec in robustness.to_dict("records"):
        label = {"cell": rec["outcome"], "joint_time": "all outcomes", "joint_all": "all cells"}.get(rec["scope"])
        if label is None:
            continue
        time = "all" if rec["time"] != rec["time"] else f"{rec['time']:g}"
        table.add_row(
            time,
            label,
            f"{rec['prob_equivalence_min']:.3f}-{rec['prob_equivalence_max']:.3f}",
            f"{rec['n_equivalent']} of {rec['n_fits']}",
            str(rec["configuration_min"]),
        )
    console.print(table)


def print_headline(headline, labels: dict[str, str], title: str, rule_text: str, beyond: str | None = None) -> None:
    """The headline (:func:`bayes_stenosis.outputs.headline_table`): each cell's delta with its interval,
    P(equiv), the prior's and the decision, then the joint rows; the rule under it."""
    from rich.markup import escape

    columns = [c for c in headline.columns if c != "scope"]
    caption = f"rule: {rule_text}"
    if "sensitivity" in columns:  # its short header explained (the table must fit 120 columns)
        caption += "; sweep: lowest-highest P(equiv) over the sensitivity fits (fits equivalent / fits)"
    table = Table(title=escape(title), caption=escape(caption), min_width=60)
    for col in columns:
        left = col in ("outcome", "decision", "delta", "sensitivity")
        # every value whole on one line: a cut interval or probability would mislead
        table.add_column(labels[col], justify="left" if left else "right", no_wrap=True)
    for rec in headline.to_dict("records"):
        style = "bold" if rec["scope"] != "cell" else None
        table.add_row(*(escape(str(rec[c])) for c in columns), style=style)
    console.print(table)
    if beyond:
        console.print(beyond, markup=False)
