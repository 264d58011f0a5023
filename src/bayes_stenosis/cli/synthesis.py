"""``bayes-stenosis synthesize``: a Bayesian random-effects synthesis of one contrast (or, with ``--cells``,
several cells jointly) across saved runs (:func:`bayes_stenosis.analyses.run_synthesis`); ``app.py`` registers
it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bayes_stenosis.cli.common import console, handle_errors, quiet_warnings, status
from bayes_stenosis.errors import SynthesisError

__all__ = ["synthesize"]


def parse_pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """``NAME=VALUE`` options as a dict (one-line error otherwise)."""
    out = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise SynthesisError(None, f"{option}: expected NAME=VALUE (got {item!r})")
        out[name.strip()] = value.strip()
    return out


def parse_cells(values: list[str] | None) -> dict[str, tuple[str, float]]:
    """``--cell STUDY=OUTCOME@TIME`` options as ``{study: (outcome, time)}``."""
    cells = {}
    for study, text in parse_pairs(values, "--cell").items():
        outcome, sep, time = text.rpartition("@")
        try:
            cells[study] = (outcome, float(time))
        except ValueError:
            sep = ""
        if not sep or not outcome:
            raise SynthesisError(
                None, f"--cell: expected STUDY=OUTCOME@TIME, e.g. tafazal2007=VAS_leg@4 (got {study}={text!r})"
            )
    return cells


def parse_joint_cells(text: str | None) -> list[tuple[str, float]]:
    """``--cells OUTCOME@TIME,OUTCOME@TIME`` as ``[(outcome, time), ...]``."""
    cells = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        outcome, sep, time = item.strip().rpartition("@")
        try:
            cells.append((outcome, float(time)))
        except ValueError:
            sep = ""
        if not sep or not outcome:
            raise SynthesisError(None, f"--cells: expected OUTCOME@TIME,OUTCOME@TIME, e.g. VAS@4,ODI@4 (got {item!r})")
    return cells


@handle_errors
def synthesize(
    runs: Annotated[list[Path], typer.Argument(help="Run folders written by fit (one per study).")],
    outcome: Annotated[str | None, typer.Option(help="Outcome of the contrast (study.toml name).")] = None,
    time: Annotated[float | None, typer.Option(help="Follow-up time of the contrast.")] = None,
    cell: Annotated[
        list[str] | None,
        typer.Option(
            help="A study's own cell where it differs: STUDY=OUTCOME@TIME (repeatable); the output lists "
            "every study's cell."
        ),
    ] = None,
    cells: Annotated[
        str | None,
        typer.Option(
            "--cells",
            help="MULTIVARIATE synthesis over several cells: OUTCOME@TIME,OUTCOME@TIME (e.g. VAS@4,ODI@4), each "
            "run's joint likelihood over the cells it has (instead of --outcome / --time / --cell).",
        ),
    ] = None,
    between_correlation: Annotated[
        str,
        typer.Option(
            help="--cells: prior of r, the between-study correlation of the cells' effects: uniform (over "
            "(-1/(K-1), 1), integrated) | fixed:R."
        ),
    ] = "uniform",
    out: Annotated[Path, typer.Option("--out", help="The synthesis folder to write.")] = Path("outputs/synthesis"),
    scale: Annotated[
        str, typer.Option(help="auto (natural when every unit and standardising SD agree) | standardized | natural.")
    ] = "auto",
    likelihood: Annotated[
        str,
        typer.Option(
            help="auto (the normal likelihood unless the run's KS / quantile-error figures say it is poor, then the "
            "draws reweighted by the prior) | normal | reweighted."
        ),
    ] = "auto",
    tau_prior: Annotated[
        str, typer.Option(help="bartos2021_back_and_neck (InvGamma(1.75, 0.57) SMD) | half_normal:SCALE | fixed:VALUE.")
    ] = "bartos2021_back_and_neck",
    mu_prior: Annotated[
        str, typer.Option(help="weakly_informative (Student-t(5, 0, 0.37) SMD) | normal:SD.")
    ] = "weakly_informative",
    margin: Annotated[
        float | None,
        typer.Option(help="Equivalence margin on the synthesis scale (default: the studies' own, if equal)."),
    ] = None,
    arm_map: Annotated[
        list[str] | None, typer.Option(help="Treat arm NAME as COMMON_NAME when comparing studies: NAME=COMMON_NAME.")
    ] = None,
    max_ks: Annotated[
        float, typer.Option(help="--likelihood auto: the run's KS distance above which its normal is poor.")
    ] = 0.05,
    max_quantile_error: Annotated[
        float, typer.Option(help="--likelihood auto: the run's quantile error (posterior SDs) above which it is poor.")
    ] = 0.1,
    min_effective_draws: Annotated[float, typer.Option(help="Least Kish effective size of reweighted draws.")] = 1000.0,
    seed: Annotated[
        int, typer.Option(help="Seed of the draws in posterior.nc (the numbers come from the grid).")
    ] = 20261207,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing synthesis folder.")] = False,
) -> None:
    """Bayesian random-effects synthesis of one contrast across saved runs, from each run's LIKELIHOOD.

    Writes OUT/ (synthesis.json, synthesis.csv, forest.png, report.md, manifest.json with the input runs'
    SHA-256) and prints the pooled effect, tau, a new study's prediction and P(equivalence) of both.
    """
    quiet_warnings()
    from bayes_stenosis.analyses import run_synthesis
    from bayes_stenosis.analyses.synthesis import QualityLimits

    joint = parse_joint_cells(cells)
    if not joint and between_correlation != "uniform":
        raise SynthesisError(None, "--between-correlation applies only to a multivariate synthesis (--cells)")
    extra = {"joint_cells": joint, "between_correlation": between_correlation} if joint else {}
    with status("synthesising"):
        result = run_synthesis(
            runs,
            out,
            overwrite=overwrite,
            outcome=outcome,
            time=time,
            cells=parse_cells(cell),
            scale=scale,
            likelihood=likelihood,
            tau_prior=tau_prior,
            mu_prior=mu_prior,
            margin=margin,
            arm_map=parse_pairs(arm_map, "--arm-map"),
            limits=QualityLimits(max_ks, max_quantile_error, min_effective_draws),
            seed=seed,
            **extra,
        )
    if joint:
        print_multivariate(result.synthesis)
    else:
        print_synthesis(result.synthesis)
    console.print(f"wrote {escape(str(result.folder))}")


def print_synthesis(synthesis) -> None:
    """The synthesis table (studies, pooled, new study, tau) and its notes."""
    table = synthesis.table()
    out = Table(
        title=f"synthesis: {escape(synthesis.comparison)} ({escape(synthesis.unit)}; margin {synthesis.margin:.3g})"
    )
    for col in ("row", "likelihood", "mean", "95 % interval", "P(equiv)", "prior P(equiv)"):
        out.add_column(col, justify="left" if col in ("row", "likelihood") else "right")
    for rec in table.to_dict("records"):
        name = rec["row"] if rec["row"] != "study" else f"{rec['study']} ({rec['outcome']}, wk {rec['time']:g})"
        lik = (
            ""
            if rec["row"] != "study"
            else f"{rec['likelihood']}: {rec['likelihood_mean']:.3f} +- {rec['likelihood_sd']:.3f}"
        )
        mean = rec["median"] if rec["row"] == "tau" else rec["mean"]
        p, prior = rec["prob_equivalence"], rec["prior_prob_equivalence"]
        out.add_row(
            escape(name + (" (median)" if rec["row"] == "tau" else "")),
            escape(lik),
            f"{mean:.3f}",
            f"{rec['interval_low']:.3f} to {rec['interval_high']:.3f}",
            "" if p != p else f"{p:.3f}",
            "" if prior != prior else f"{prior:.3f}",
        )
    console.print(out)
    console.print(f"priors: {escape(synthesis.mu_prior.text())}; {escape(synthesis.tau_prior.text())}", soft_wrap=True)
    for note in synthesis.notes:
        console.print(f"note: {escape(note)}", soft_wrap=True)


def print_multivariate(synthesis) -> None:
    """Per cell the pooled and new-study effects, then the joint probabilities, tau and r, and the notes."""
    table = synthesis.table()
    out = Table(title=f"multivariate synthesis: {escape(synthesis.comparison)} ({escape(synthesis.unit)})")
    for col in ("row", "cell", "mean", "95 % interval", "margin", "P(equiv)", "prior P(equiv)"):
        out.add_column(col, justify="left" if col in ("row", "cell") else "right")
    for rec in table[table["row"] != "study"].to_dict("records"):
        mean = rec["median"] if rec["row"] in ("tau", "r") else rec["mean"]
        interval = (
            ""
            if rec["interval_low"] != rec["interval_low"]
            else f"{rec['interval_low']:.3f} to {rec['interval_high']:.3f}"
        )
        out.add_row(
            escape(rec["row"] + (" (median)" if rec["row"] in ("tau", "r") else "")),
            escape(rec["cell"]),
            "" if mean != mean else f"{mean:.3f}",
            interval,
            "" if rec["margin"] != rec["margin"] else f"{rec['margin']:.3g}",
            "" if rec["prob_equivalence"] != rec["prob_equivalence"] else f"{rec['prob_equivalence']:.3f}",
            ""
            if rec["prior_prob_equivalence"] != rec["prior_prob_equivalence"]
            else f"{rec['prior_prob_equivalence']:.3f}",
        )
    console.print(out)
    k = len(synthesis.cells)
    console.print(
        f"priors: {escape(synthesis.mu_prior.text())} per cell; {escape(synthesis.tau_prior.text())}; "
        f"{escape(synthesis.r_prior.text(k))}",
        soft_wrap=True,
    )
    for note in synthesis.notes:
        console.print(f"note: {escape(note)}", soft_wrap=True)
