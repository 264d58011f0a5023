"""Write ``report.html``: rendered from a run folder (:func:`bayes_stenosis.outputs.build_context`) and
published like every other output: checked path, no silent overwrite, checksum in the run's manifest.

``bayes-stenosis report RUN`` writes ``RUN/report.html`` when the run has none (``fit --no-report``);
when it has one, it refuses unless ``--overwrite`` (rewrite it: the run's manifest records the new
file) or ``--out PATH`` (write elsewhere). Before rendering, the whole run is verified: a report is
never made from a damaged file.
"""

from __future__ import annotations

from pathlib import Path

from bayes_stenosis.outputs.plots import write_plots
from bayes_stenosis.outputs.report import REPORT_NAME, build_context
from bayes_stenosis.run import RunFolder, amend_run, check_output_file, load_run, write_output_file


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bayes_stenosis", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: "" if v is None or v != v else f"{v:.1%}"
    return env


def render_page(run: RunFolder) -> str:
    """The report's HTML."""
    return _environment().get_template("report.html.j2").render(**build_context(run))


def render_report(
    run: str | Path | RunFolder,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    make_plots: bool = True,
    staging: bool = False,
) -> Path:
    """Write ``report.html`` (default: into the run folder) and return its path.

    Plots missing from ``RUN/plots`` are drawn first (into the run, recorded in its manifest) unless
    ``make_plots`` is false; the report shows whatever plots exist. ``staging=True`` is for
    :func:`bayes_stenosis.workflow.fit`, which renders into the run's temporary folder before
    publishing it (``run`` may then be the staged :class:`RunFolder` the plots read).

    Raises
    ------
    OutputPathError
        The target exists and ``overwrite`` is false, or cannot be written; checked before any work.
    RunFolderError
        Not a complete run folder, or one of its files is damaged (named).
    """
    if staging:
        staged = run if isinstance(run, RunFolder) else RunFolder(Path(run), staging=True)
        folder = staged.path
        if make_plots and not (folder / "plots" / "forest.png").is_file():
            write_plots(staged)
        target = Path(out) if out is not None else folder / REPORT_NAME
        target.write_text(render_page(staged), encoding="utf-8")
        return target
    loaded = load_run(run)
    loaded.require_fit()
    folder = loaded.path
    target = check_output_file(
        Path(out) if out is not None else folder / REPORT_NAME, overwrite=overwrite, what="report"
    )
    with amend_run(folder) as record:
        loaded.require_intact()  # under the run's lock: the files embedded are the ones recorded
        added = write_plots(folder) if make_plots and not (folder / "plots" / "forest.png").is_file() else []
        page = render_page(loaded)
        write_output_file(
            target, lambda tmp: tmp.write_text(page, encoding="utf-8"), overwrite=overwrite, what="report"
        )
        if target.resolve().is_relative_to(folder.resolve()):
            added.append(target)
        record(added)
    return target
