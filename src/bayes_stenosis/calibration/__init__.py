"""``calibration``: simulation-based calibration and coverage studies (public API, re-exported).

- ``cases``: the SBC cases and modes, their simulated template studies;
- ``ranks``: ranks of the truth among posterior draws and their uniformity test;
- ``sbc``: SBC replicates from the model's generative process, refitted with one compile per structure;
- ``results``: SBC run folders (written per case, read back, rank histograms redrawn);
- ``coverage``: the one coverage implementation (:func:`coverage_study`) and its intervals;
- ``coverage_runs``: the published coverage runs, their files and merging of trial ranges.

The command line is ``bayes-stenosis validation sbc | coverage | coverage-merge | plot``.
"""

from bayes_stenosis.calibration.cases import (
    CASES,
    MODES,
    ODI,
    PRIOR_SET,
    RMDQ,
    TARGET_ACCEPT,
    Case,
    Mode,
    build_case_model,
    case_template,
    exchangeable_correlation,
    model_for,
)
from bayes_stenosis.calibration.coverage import (
    CoverageResult,
    CoverageTrialTask,
    SimulatedTrial,
    binomial_interval,
    coverage_study,
    coverage_study_on_engine,
    draw_truths_from_prior,
    expected_coverage_band,
    first_within_scale,
    summarise,
    trial_clustered_interval,
    trial_rows,
)
from bayes_stenosis.calibration.coverage_runs import (
    COVERAGE_LEVELS,
    COVERAGE_OUTCOMES,
    TRUTH_KINDS,
    change_score_correlation,
    coverage_run,
    coverage_summary,
    merge_coverage,
)
from bayes_stenosis.calibration.ranks import SBCResult, ranks_of_truth, run_label, thin_draws, uniformity
from bayes_stenosis.calibration.results import load_results, plot_ranks, replot
from bayes_stenosis.calibration.sbc import (
    Replicates,
    observed_data_names,
    pattern_counts,
    pattern_label,
    prior_draws,
    quantity_names,
    run_case,
    run_sbc,
    simulate_replicates,
    simulate_threshold_events,
    wrong_data,
)

__all__ = [
    "CASES",
    "COVERAGE_LEVELS",
    "COVERAGE_OUTCOMES",
    "MODES",
    "ODI",
    "PRIOR_SET",
    "RMDQ",
    "Replicates",
    "TARGET_ACCEPT",
    "TRUTH_KINDS",
    "Case",
    "CoverageResult",
    "Mode",
    "SBCResult",
    "SimulatedTrial",
    "binomial_interval",
    "build_case_model",
    "case_template",
    "change_score_correlation",
    "coverage_run",
    "CoverageTrialTask",
    "coverage_study",
    "coverage_study_on_engine",
    "coverage_summary",
    "draw_truths_from_prior",
    "exchangeable_correlation",
    "expected_coverage_band",
    "first_within_scale",
    "load_results",
    "merge_coverage",
    "model_for",
    "observed_data_names",
    "pattern_counts",
    "pattern_label",
    "plot_ranks",
    "prior_draws",
    "quantity_names",
    "ranks_of_truth",
    "replot",
    "run_case",
    "run_label",
    "run_sbc",
    "simulate_replicates",
    "simulate_threshold_events",
    "summarise",
    "thin_draws",
    "trial_clustered_interval",
    "trial_rows",
    "uniformity",
    "wrong_data",
]
