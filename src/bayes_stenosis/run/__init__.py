"""``run``: one fit in memory (:func:`fit_study` -> :class:`Fit`), written as a run folder
(:func:`write_run`), read back (:func:`load_run`)."""

from bayes_stenosis.run.fit import Fit, PreparedFit, fit_study, load_model_spec, prepare_fit
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
from bayes_stenosis.run.load import RunFolder, load_run
from bayes_stenosis.run.manifest import MANIFEST_SCHEMA, run_manifest
from bayes_stenosis.run.results import Results, decide, evidence_mask
from bayes_stenosis.run.write import RunResult, default_run_name, fit, parse_margins, write_run

__all__ = [
    "MANIFEST_SCHEMA",
    "OBSERVED_COLUMNS",
    "REQUIRED_FILES",
    "Fit",
    "PreparedFit",
    "Results",
    "RunFolder",
    "RunResult",
    "atomic_run_folder",
    "check_run_folder",
    "decide",
    "default_run_name",
    "evidence_mask",
    "fit",
    "fit_study",
    "load_model_spec",
    "load_run",
    "observed_quantities",
    "parse_margins",
    "prepare_fit",
    "read_manifest",
    "run_manifest",
    "write_json",
    "write_run",
    "write_run_inputs",
]
