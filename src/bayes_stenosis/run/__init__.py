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
    REQUIRED_FILES,
    atomic_run_folder,
    check_run_folder,
    read_manifest,
    write_json,
)
from bayes_stenosis.run.inputs import (
    OBSERVED_COLUMNS,
    observed_quantities,
    write_run_inputs,
)

__all__ = [
    "OBSERVED_COLUMNS",
    "REQUIRED_FILES",
    "RunResult",
    "atomic_run_folder",
    "check_run_folder",
    "decide",
    "default_run_name",
    "fit",
    "observed_quantities",
    "parse_margins",
    "read_manifest",
    "write_json",
    "write_results",
    "write_run_inputs",
]
