"""Arguments and options of the commands as ``Annotated`` types: each help text written once.

Typer reads a parameter's kind, help and panel from its annotation and its flag from its name, so
``seed: FitSeed = None`` in a command declares ``--seed`` with the help below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bayes_stenosis.cli.common import PRIOR_HELP, Sampler, complete_prior

DEFAULT_STUDY = "farpour2022"
#: Help panels of ``fit``'s options.
MODEL_PANEL, SAMPLER_PANEL, OUTPUT_PANEL, RUN_PANEL = "Model and prior", "Sampler", "Output", "While running"

StudyArgument = Annotated[str, typer.Argument(help="A bundled study id or a study folder path.")]
SpecOption = Annotated[str, typer.Option("--model", help="Bundled spec name or a spec .toml path.")]

# fit's options, in the order of its help panels
FitSpec = Annotated[
    str, typer.Option("--model", help="Bundled spec name or a spec .toml path.", rich_help_panel=MODEL_PANEL)
]
FitPrior = Annotated[
    str | None,
    typer.Option("--prior", help=PRIOR_HELP, autocompletion=complete_prior, rich_help_panel=MODEL_PANEL),
]
FitMargins = Annotated[
    list[str] | None,
    typer.Option("--margin", help="Override a margin, OUTCOME=VALUE (natural units).", rich_help_panel=MODEL_PANEL),
]
FitSeed = Annotated[int | None, typer.Option(help="Run seed (default: the spec's).", rich_help_panel=SAMPLER_PANEL)]
FitChains = Annotated[int | None, typer.Option(help="Chains (default: the spec's).", rich_help_panel=SAMPLER_PANEL)]
FitDraws = Annotated[
    int | None, typer.Option(help="Draws per chain (default: the spec's).", rich_help_panel=SAMPLER_PANEL)
]
FitTune = Annotated[
    int | None, typer.Option(help="Tuning steps per chain (default: the spec's).", rich_help_panel=SAMPLER_PANEL)
]
FitSampler = Annotated[
    Sampler | None, typer.Option(help="NUTS implementation (default: the spec's).", rich_help_panel=SAMPLER_PANEL)
]
FitOut = Annotated[Path, typer.Option("--out", help="Root folder for run folders.", rich_help_panel=OUTPUT_PANEL)]
FitRunName = Annotated[
    str | None,
    typer.Option("--name", help="Run folder name (default: spec-prior-seed).", rich_help_panel=OUTPUT_PANEL),
]
FitOverwrite = Annotated[bool, typer.Option(help="Replace an existing run folder.", rich_help_panel=OUTPUT_PANEL)]
FitPlots = Annotated[bool, typer.Option(help="Write plots.", rich_help_panel=OUTPUT_PANEL)]
FitReport = Annotated[
    bool,
    typer.Option(help="Write report.html (the self-contained reviewer report).", rich_help_panel=OUTPUT_PANEL),
]
FitStrict = Annotated[bool, typer.Option(help="Exit 3 when diagnostics fail.", rich_help_panel=RUN_PANEL)]
FitProgress = Annotated[bool, typer.Option(help="Show progress bars.", rich_help_panel=RUN_PANEL)]
