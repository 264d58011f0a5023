"""``run``: one fit in memory (:func:`fit_study` -> :class:`Fit`), written as a run folder
(:func:`write_run`: locked, atomic, checksummed), read back and verified (:func:`load_run`), and the
leftovers of killed writers cleaned (:func:`clean_leftovers`)."""

from bayes_stenosis.run.fit import DiagnosticsWarning, Fit, PreparedFit, fit_study, load_model_spec, prepare_fit
from bayes_stenosis.run.folder import (
    REQUIRED_FILES,
    amend_run,
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
from bayes_stenosis.run.integrity import FileProblem, sha256_file
from bayes_stenosis.run.load import RunFolder, load_run, published_file
from bayes_stenosis.run.lock import destination_lock, lock_path
from bayes_stenosis.run.manifest import MANIFEST_SCHEMA, run_manifest
from bayes_stenosis.run.paths import check_output_file, check_output_folder, make_parents, write_output_file
from bayes_stenosis.run.results import Results, decide, evidence_mask
from bayes_stenosis.run.stale import CleanReport, clean_leftovers
from bayes_stenosis.run.write import RunResult, default_run_name, fit, parse_margins, write_run

__all__ = [
    "MANIFEST_SCHEMA",
    "OBSERVED_COLUMNS",
    "REQUIRED_FILES",
    "CleanReport",
    "FileProblem",
    "DiagnosticsWarning",
    "Fit",
    "PreparedFit",
    "Results",
    "RunFolder",
    "RunResult",
    "amend_run",
    "atomic_run_folder",
    "check_output_file",
    "check_output_folder",
    "check_run_folder",
    "clean_leftovers",
    "decide",
    "default_run_name",
    "destination_lock",
    "evidence_mask",
    "fit",
    "fit_study",
    "load_model_spec",
    "load_run",
    "make_parents",
    "lock_path",
    "observed_quantities",
    "parse_margins",
    "prepare_fit",
    "published_file",
    "read_manifest",
    "run_manifest",
    "sha256_file",
    "write_json",
    "write_output_file",
    "write_run",
    "write_run_inputs",
]
