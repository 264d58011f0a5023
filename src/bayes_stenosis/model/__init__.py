"""``model``: PyMC models from validated inputs (public API, re-exported from its modules).

``inputs`` (ModelInputs from a study) -> ``builder`` (the hierarchy and :func:`build_model`), with the
likelihood terms in ``terms/`` (``arm_summary``, ``contrast``, ``threshold`` and ``threshold_joint``,
``ipd``), the error correlations in ``correlation`` and the analytic integration of the outcome
deviations in ``marginal``.
"""

from bayes_stenosis.model.builder import (
    build_model,
    check_forward_sampling,
    data_values,
    marginalises_change,
    predictive_model,
    prior_sampling_model,
    reference_change_unpooled,
)
from bayes_stenosis.model.correlation import lkj_correlation
from bayes_stenosis.model.inputs import ArmSummaryBlock, ModelInputs, prepare_inputs, resolve_prior
from bayes_stenosis.model.marginal import MARGINAL_IPD_POTENTIAL
from bayes_stenosis.model.terms.statement_simulation import (
    STATEMENT_VARIABLES,
    simulate_statement_events,
    simulate_statement_statistics,
    simulate_study_statement_statistics,
    statement_event_kinds,
    statement_reproduced,
)
from bayes_stenosis.model.terms.threshold import (
    EVENT_KIND_CODES,
    chi_nodes,
    log_prob_event,
    log_prob_event_coded,
    threshold_design,
)
from bayes_stenosis.model.terms.threshold_joint import (
    JointDesign,
    joint_statement_design,
    simulate_joint_statement_statistics,
    statement_dependence,
)

__all__ = [
    "ArmSummaryBlock",
    "EVENT_KIND_CODES",
    "JointDesign",
    "MARGINAL_IPD_POTENTIAL",
    "ModelInputs",
    "STATEMENT_VARIABLES",
    "build_model",
    "check_forward_sampling",
    "chi_nodes",
    "data_values",
    "joint_statement_design",
    "lkj_correlation",
    "log_prob_event",
    "log_prob_event_coded",
    "marginalises_change",
    "prepare_inputs",
    "predictive_model",
    "prior_sampling_model",
    "reference_change_unpooled",
    "resolve_prior",
    "simulate_joint_statement_statistics",
    "simulate_statement_events",
    "simulate_statement_statistics",
    "simulate_study_statement_statistics",
    "statement_dependence",
    "statement_event_kinds",
    "statement_reproduced",
    "threshold_design",
]
