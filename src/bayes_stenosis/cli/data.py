"""``bayes-stenosis data``: list the bundled studies, check a study folder, write a template.

The study reader is imported inside the commands (``validate`` also loads PyMC to check the study against
the model spec), so ``data list`` and ``data template`` start fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bayes_stenosis.cli.common import console, handle_errors
from bayes_stenosis.cli.options import DEFAULT_STUDY, SpecOption, StudyArgument

data_app = typer.Typer(help="Check, list and create study folders.", no_args_is_help=True)


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
def data_validate(study: StudyArgument = DEFAULT_STUDY, model: SpecOption = "default") -> None:
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
