"""``design``: planning a confirmatory trial from a run's posterior.

``inputs`` (the design problem: cells, margins, design prior, the trial's sampling model, the analysis
prior and rule) -> ``fast`` (one simulated trial analysed in closed form, a trial task of
:mod:`bayes_stenosis.engine`) | ``refit`` (one simulated trial fitted with the package's model) ->
``summary`` (assurance and P(wrong "equivalent") with Monte Carlo intervals, the n reaching a target) ->
``figure`` (the assurance curve) -> ``analysis`` (:func:`design_analysis`: the trials on Dask, the
design folder).
"""

from bayes_stenosis.design.analysis import (
    DEFAULT_SEED,
    DEFAULT_TARGET,
    FAST_PATH,
    METHODS,
    REFIT_PATH,
    DesignResult,
    design_analysis,
)
from bayes_stenosis.design.fast import FastTrial, cell_prob_equivalence, joint_declared, normal_posterior
from bayes_stenosis.design.inputs import ANALYSIS_PRIORS, DESIGN_PRIORS, DesignInputs, design_inputs_from_run
from bayes_stenosis.design.refit import RefitSettings, RefitTrial, refit_trial_from_run
from bayes_stenosis.design.summary import clopper_pearson, design_table, target_table

__all__ = [
    "ANALYSIS_PRIORS",
    "DEFAULT_SEED",
    "DEFAULT_TARGET",
    "DESIGN_PRIORS",
    "FAST_PATH",
    "METHODS",
    "REFIT_PATH",
    "RefitSettings",
    "RefitTrial",
    "refit_trial_from_run",
    "DesignInputs",
    "DesignResult",
    "FastTrial",
    "cell_prob_equivalence",
    "clopper_pearson",
    "design_analysis",
    "design_inputs_from_run",
    "design_table",
    "joint_declared",
    "normal_posterior",
    "target_table",
]
