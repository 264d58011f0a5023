"""``run``: public API (re-exported from its modules)."""

from bayes_stenosis.run.fit import (
    RunResult,
    decide,
    default_run_name,
    fit,
    parse_margins,
    write_results,
)
from bayes_stenosis.run.folder import (
    KEY_PACKAGES,
    REQUIRED_FILES,
    atomic_run_folder,
    check_run_folder,
    command_line,
    git_commit,
    now_utc,
    package_versions,
    provenance,
    read_manifest,
    write_json,
)
from bayes_stenosis.run.inputs import (
    OBSERVED_COLUMNS,
    observed_quantities,
    write_run_inputs,
)

__all__ = [
    "KEY_PACKAGES",
    "OBSERVED_COLUMNS",
    "REQUIRED_FILES",
    "RunResult",
    "atomic_run_folder",
    "check_run_folder",
    "command_line",
    "decide",
    "default_run_name",
    "fit",
    "git_commit",
    "now_utc",
    "observed_quantities",
    "package_versions",
    "parse_margins",
    "provenance",
    "read_manifest",
    "write_json",
    "write_results",
    "write_run_inputs",
]
