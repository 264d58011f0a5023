"""Bayesian random-effects synthesis of one contrast across saved runs (``bayes-stenosis synthesize``).

Each study enters through its run's LIKELIHOOD (``approximations.json``: the normal approximation with the
run's prior divided out; or, where the run's own figures say that normal is poor, its posterior draws
reweighted by the prior), never its posterior, so no prior is counted twice. The model is the
normal-normal hierarchy theta_i ~ N(mu, tau^2), computed by numerical integration on a (tau, mu) grid. With
several cells (``--cells``) it is multivariate: theta_i ~ MVN(mu, tau^2((1 - r) I + r J)) over the cells, each
study through its joint normal likelihood over the cells it has.

Modules: ``priors`` (the cited priors on mu and tau), ``engine`` (the grid integration), ``inputs`` (a
run's likelihood of one cell, and the refusals), ``combine`` (the checks across studies and
:func:`synthesize`), ``figure`` (the forest plot), ``writing`` (the folder: :func:`run_synthesis`),
``multivariate`` (the engine over several cells) and ``joint`` (its inputs, checks and
:func:`synthesize_multivariate`).
"""

from bayes_stenosis.analyses.synthesis.combine import Synthesis, synthesize, synthesize_studies
from bayes_stenosis.analyses.synthesis.engine import (
    GridPosterior,
    Likelihood,
    new_study_probability,
    posterior_grid,
    summarize_grid,
)
from bayes_stenosis.analyses.synthesis.figure import forest_panels, forest_plot
from bayes_stenosis.analyses.synthesis.inputs import (
    QualityLimits,
    StudyInput,
    cell_prior_logpdf,
    read_study,
    reweighted_likelihood,
)
from bayes_stenosis.analyses.synthesis.joint import MultivariateSynthesis, synthesize_multivariate
from bayes_stenosis.analyses.synthesis.multivariate import (
    CorrelationPrior,
    MvLikelihood,
    correlation_prior,
    mv_posterior,
    mv_summary,
)
from bayes_stenosis.analyses.synthesis.priors import EffectPrior, HeterogeneityPrior, effect_prior, heterogeneity_prior
from bayes_stenosis.analyses.synthesis.writing import SynthesisResult, report_section, run_synthesis

__all__ = [
    "CorrelationPrior",
    "EffectPrior",
    "MultivariateSynthesis",
    "MvLikelihood",
    "correlation_prior",
    "forest_panels",
    "mv_posterior",
    "mv_summary",
    "synthesize_multivariate",
    "GridPosterior",
    "HeterogeneityPrior",
    "Likelihood",
    "QualityLimits",
    "StudyInput",
    "Synthesis",
    "SynthesisResult",
    "cell_prior_logpdf",
    "effect_prior",
    "forest_plot",
    "heterogeneity_prior",
    "new_study_probability",
    "posterior_grid",
    "read_study",
    "report_section",
    "reweighted_likelihood",
    "run_synthesis",
    "summarize_grid",
    "synthesize",
    "synthesize_studies",
]
