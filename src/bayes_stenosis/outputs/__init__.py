"""``outputs``: public API (re-exported from its modules)."""

from bayes_stenosis.outputs.checks import ppc_table, prior_predictive_ranges, prior_vs_posterior
from bayes_stenosis.outputs.figures import figure_captions, forest_alt, predictive_caption
from bayes_stenosis.outputs.headline import HEADLINE_LABELS, headline_labels, headline_markdown, headline_table
from bayes_stenosis.outputs.plots import (
    GROUP_UNITS,
    PARAMETER_GROUPS,
    diagnostic_and_check_plots,
    energy,
    forest,
    margin_curve_plot,
    predictive_check,
    predictive_content,
    prior_posterior,
    trace_and_rank,
    write_plots,
)
from bayes_stenosis.outputs.render import render_page, render_report
from bayes_stenosis.outputs.report import REPORT_NAME, build_context
from bayes_stenosis.outputs.sources import (
    evidence_files,
    final_folder,
    prior_rows,
    rerun_command,
    spec_comments,
    study_sources,
)
from bayes_stenosis.outputs.summary import (
    EXPORT_FORMATS,
    SUMMARY_COLUMNS,
    Summary,
    export_run,
    summarize_run,
    sweep_robustness,
)
from bayes_stenosis.outputs.tables import COLUMN_LABELS, table_context

__all__ = [
    "EXPORT_FORMATS",
    "SUMMARY_COLUMNS",
    "Summary",
    "export_run",
    "summarize_run",
    "sweep_robustness",
    "COLUMN_LABELS",
    "HEADLINE_LABELS",
    "figure_captions",
    "forest_alt",
    "headline_labels",
    "headline_markdown",
    "headline_table",
    "predictive_caption",
    "table_context",
    "GROUP_UNITS",
    "PARAMETER_GROUPS",
    "REPORT_NAME",
    "build_context",
    "diagnostic_and_check_plots",
    "energy",
    "evidence_files",
    "final_folder",
    "forest",
    "margin_curve_plot",
    "ppc_table",
    "predictive_check",
    "predictive_content",
    "prior_posterior",
    "prior_predictive_ranges",
    "prior_rows",
    "prior_vs_posterior",
    "render_page",
    "render_report",
    "rerun_command",
    "spec_comments",
    "study_sources",
    "trace_and_rank",
    "write_plots",
]
