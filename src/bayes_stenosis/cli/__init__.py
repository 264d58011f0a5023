"""``cli``: public API (re-exported from its modules)."""

from bayes_stenosis.cli.app import app, fit, info, main, reproduce, sensitivity
from bayes_stenosis.cli.common import console, err_console, handle_errors, print_decisions
from bayes_stenosis.cli.data import data_app, data_list, data_template, data_validate
from bayes_stenosis.cli.options import DEFAULT_STUDY
from bayes_stenosis.cli.runs import clean, diagnose, export, report, summarize
from bayes_stenosis.cli.validation import validation_app

__all__ = [
    "DEFAULT_STUDY",
    "app",
    "clean",
    "console",
    "data_app",
    "data_list",
    "data_template",
    "data_validate",
    "diagnose",
    "err_console",
    "export",
    "fit",
    "handle_errors",
    "info",
    "main",
    "print_decisions",
    "report",
    "reproduce",
    "sensitivity",
    "summarize",
    "validation_app",
]
