"""``bayes-stenosis design RUN``: assurance of a confirmatory trial over the per-arm n, simulated on Dask."""

from __future__ import annotations

import enum
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bayes_stenosis.cli.common import console, handle_errors, quiet_warnings, status

DESIGN_PANEL, ENGINE_PANEL = "Design", "Where the trials run"


class DesignPrior(enum.StrEnum):
    """``--design-prior``: where each simulated trial's true differences come from."""

    draws = "draws"
    normal = "normal"


class Method(enum.StrEnum):
    """``--method``: how each simulated trial is analysed."""

    fast = "fast"
    refit = "refit"


class AnalysisPrior(enum.StrEnum):
    """``--analysis-prior``: the prior each simulated trial is analysed with."""

    run = "run"
    flat = "flat"


def parse_ns(value: str) -> list[int]:
    """``40,80,120`` -> [40, 80, 120] (each >= 2)."""
    try:
        ns = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"--n must be comma-separated whole numbers (got {value!r})") from None
    if not ns or min(ns) < 2:
        raise typer.BadParameter(f"--n needs per-arm sizes of at least 2 (got {value!r})")
    return ns


@handle_errors
def design(
    run: Annotated[Path, typer.Argument(help="A run folder written by fit (its posterior is the design prior).")],
    n: Annotated[
        str, typer.Option("--n", help="Per-arm sample sizes, comma-separated.", rich_help_panel=DESIGN_PANEL)
    ] = "40,80,120,160",
    trials: Annotated[
        int, typer.Option(min=1, help="Simulated trials (the same at every n).", rich_help_panel=DESIGN_PANEL)
    ] = 1000,
    target: Annotated[
        float, typer.Option(help="Assurance whose smallest n is reported.", rich_help_panel=DESIGN_PANEL)
    ] = 0.8,
    seed: Annotated[int, typer.Option(help="Root seed of the trials.", rich_help_panel=DESIGN_PANEL)] = 20261207,
    effect: Annotated[
        float | None,
        typer.Option(
            help="A fixed true delta in every cell (standardized units) instead of a design prior.",
            rich_help_panel=DESIGN_PANEL,
        ),
    ] = None,
    design_prior: Annotated[
        DesignPrior,
        typer.Option(
            help="The run's posterior draws of delta, or their normal approximation.", rich_help_panel=DESIGN_PANEL
        ),
    ] = DesignPrior.draws,
    change_sd: Annotated[
        float | None,
        typer.Option(
            help="Per-patient SD of change, standardized (default: the run's posterior change_sd_ratio).",
            rich_help_panel=DESIGN_PANEL,
        ),
    ] = None,
    analysis_prior: Annotated[
        AnalysisPrior,
        typer.Option(
            help="Analyse each trial under the run's prior (as a normal) or a flat prior.", rich_help_panel=DESIGN_PANEL
        ),
    ] = AnalysisPrior.run,
    method: Annotated[
        Method,
        typer.Option(
            help="fast: closed-form normal analysis of each trial; refit: each trial fitted with the package's model "
            "(seconds per trial and n: for a cluster).",
            rich_help_panel=DESIGN_PANEL,
        ),
    ] = Method.fast,
    refit_draws: Annotated[
        int,
        typer.Option(
            min=50, help="Draws (and tuning steps) per chain of each refit, 2 chains.", rich_help_panel=DESIGN_PANEL
        ),
    ] = 500,
    out: Annotated[
        Path | None, typer.Option("--out", help="Design folder to write (default: RUN-design beside the run).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing design folder.")] = False,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Local worker processes (default: the CPUs).", rich_help_panel=ENGINE_PANEL),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Address of a running Dask scheduler (default: $DASK_SCHEDULER_ADDRESS, else local).",
            rich_help_panel=ENGINE_PANEL,
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.", rich_help_panel=ENGINE_PANEL)] = True,
) -> None:
    """Plan a confirmatory trial: simulate trials with the run's outcomes and times at each per-arm n,
    analyse each with the decision rule, and report the assurance (P(declare equivalence)) per cell and
    jointly, P(a wrong "equivalent"), with Monte Carlo intervals, and the n reaching the target."""
    from bayes_stenosis.design import RefitSettings, design_analysis
    from bayes_stenosis.engine import RichTrialProgress

    quiet_warnings()
    ns = parse_ns(n)
    if not 0 < target < 1:
        raise typer.BadParameter(f"--target must be in (0, 1) (got {target})")
    out = out if out is not None else run.with_name(f"{run.name}-design")
    bar = RichTrialProgress(console, "simulated trials") if progress else None
    with bar if bar is not None else status("simulating trials"):
        result = design_analysis(
            run,
            n_per_arm=ns,
            trials=trials,
            seed=seed,
            target=target,
            effect=effect,
            design_prior=design_prior.value,
            change_sd=change_sd,
            analysis_prior=analysis_prior.value,
            out=out,
            overwrite=overwrite,
            method=method.value,
            refit=RefitSettings(chains=2, draws=refit_draws, tune=refit_draws),
            workers=workers,
            scheduler=scheduler,
            progress=bar,
        )
    print_design(result)


def print_design(result) -> None:
    """The joint rows and the n reaching the target, then where the folder is."""
    engine = result.manifest["engine"]
    how = "full refits" if "refit_sampler" in result.manifest["settings"] else "fast path"
    table = Table(title=f"Assurance of a confirmatory trial (simulated; {how})")
    for col in ("n per arm", "scope", "assurance", "95% MC interval", "P(wrong equiv)"):
        table.add_column(col, justify="right")
    for rec in result.design[result.design["scope"] != "cell"].to_dict("records"):
        where = "all cells" if rec["scope"] == "joint_all" else f"week {rec['time']:g}"
        table.add_row(
            str(rec["n_per_arm"]),
            where,
            f"{rec['assurance']:.3f}",
            f"{rec['assurance_low']:.3f}-{rec['assurance_high']:.3f}",
            f"{rec['prob_wrong_equivalent']:.4f}",
        )
    console.print(table)
    for rec in result.target[result.target["scope"] == "joint_all"].to_dict("records"):
        n_t = rec["n_reaching_target"]
        reached = (
            f"n = {n_t:g} per arm"
            if not math.isnan(n_t)
            else f"no n of the grid (assurance {rec['assurance_at_largest_n']:.3f} at n = {rec['largest_n']})"
        )
        console.print(f"all cells equivalent with assurance >= {rec['target_assurance']:g}: {reached}")
    console.print(
        f"{engine['trials_computed']} trials simulated ({engine['trials_resumed']} resumed) at "
        f"{engine['trials_per_second']:.1f} trials/s on {engine['cluster'].get('n_workers', '?')} worker(s)"
    )
    console.print(
        f"wrote [bold]{escape(str(result.folder))}[/] (design.csv, target_n.csv, trials.csv.gz, assurance.png)"
    )
