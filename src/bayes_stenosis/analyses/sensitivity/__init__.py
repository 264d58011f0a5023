r"""Sensitivity analysis: refit a study over prior sets x correlation assumptions, decide over margin sets.

The grid is the spec's ``[sensitivity]`` table (``models/default.toml``), so it changes without code:

* every **prior set** on the time-point treatment difference :math:`\Delta_t` (weakly informative,
  small difference, sceptical of equivalence, enthusiastic, vague, or any set the spec defines) is
  combined with every **baseline-follow-up correlation assumption** (``"uncertain"``: the Beta priors
  of ``[correlation]``; a number: :math:`\rho_o` fixed at that value for every outcome): each pair is
  one fit;
* every prior set that follows the spec's pooling is refitted under every alternative **outcome
  pooling** (``[sensitivity] outcome_pooling``: a tau scale, or none), at the reference correlation;
* every **margin set** (the study's own margins, plus the alternatives of docs/methods.md section 1a) is
  applied to the draws of every fit. Margins change no posterior here: they enter only the
  decisions. The margin-based priors (small difference, sceptical of equivalence, enthusiastic) stay
  calibrated to the study's pre-specified margin (the spec's ``reference_margin``), so that a margin
  set asks "is the same posterior inside a different margin?" and not "what if the prior had been
  built around another margin?" (the latter would mix two sensitivities in one number).

Every fit is :func:`bayes_stenosis.run.fit_study`, the pipeline of ``bayes-stenosis fit`` (without
the posterior predictive, which no decision uses). Compile once, swap data: the Delta prior's
hyperparameters (``prior_Delta_mu``, ``prior_Delta_sigma``, ``prior_Delta_nu``) and a fixed
correlation (``rho_fixed``) are ``pm.Data`` containers of the model
(:func:`bayes_stenosis.model.build_model`), so one nutpie compile serves every prior set of a family
(Student-t or normal) and every fixed value. A sweep compiles once per model *structure* (family x
correlation mode: at most 4; one :class:`~bayes_stenosis.inference.CompileCache` across the sweep)
and each further fit costs only its sampling (a compile costs 5-60 s, BENCHMARKS.md). Each fit's
chains run in parallel on up to 2 cores (nutpie ``cores``); running two fits at once would not help
on a 2-core machine.

Each fit is diagnosed (R-hat, bulk/tail ESS, divergences; the spec's ``[diagnostics]`` limits) and
its verdict is written beside its probabilities: failures are reported, not hidden.

Modules: ``configs`` (the grid: :class:`FitConfig`, the reference fit, margin sets), ``runner``
(:func:`run_sensitivity`: the sweep and its manifest), ``tables`` (``sensitivity.csv``, ``fits.csv``,
``robustness.csv``; the robustness table beside a run), ``figure`` (``sensitivity.png``).
"""

from bayes_stenosis.analyses.sensitivity.configs import (
    FitConfig,
    grid,
    margin_sets,
    spec_for_correlation,
    threshold_assumptions,
)
from bayes_stenosis.analyses.sensitivity.figure import plot_sensitivity
from bayes_stenosis.analyses.sensitivity.runner import SensitivityResult, run_sensitivity, sweep, write_sweep_plan
from bayes_stenosis.analyses.sensitivity.tables import (
    COLUMNS,
    fit_summary,
    margin_set_table,
    matching_robustness,
    outcome_pooling_text,
    robustness_table,
)

__all__ = [
    "COLUMNS",
    "FitConfig",
    "SensitivityResult",
    "fit_summary",
    "grid",
    "margin_set_table",
    "margin_sets",
    "matching_robustness",
    "outcome_pooling_text",
    "plot_sensitivity",
    "robustness_table",
    "run_sensitivity",
    "spec_for_correlation",
    "sweep",
    "threshold_assumptions",
    "write_sweep_plan",
]
