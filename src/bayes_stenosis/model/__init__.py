"""``model``: PyMC models from validated inputs (public API, re-exported from its modules).

``inputs`` (ModelInputs from a study) -> ``builder`` (the hierarchy and :func:`build_model`), with the
likelihood terms in ``terms/`` (``arm_summary``, ``contrast``, ``threshold``, ``ipd``), the error
correlations in ``correlation`` and the analytic integration of the outcome deviations in ``marginal``.
"""

from bayes_stenosis.model.builder import (
    build_model,
    check_forward_sampling,
    data_values,
    marginalises_change,
    prior_sampling_model,
)
from bayes_stenosis.model.correlation import lkj_correlation
from bayes_stenosis.model.inputs import ArmSummaryBlock, ModelInputs, prepare_inputs, resolve_prior
from bayes_stenosis.model.marginal import MARGINAL_IPD_POTENTIAL
from bayes_stenosis.model.terms.threshold import (
    EVENT_KIND_CODES,
    chi_nodes,
    log_prob_event,
    log_prob_event_coded,
    simulate_statement_events,
    simulate_statement_statistics,
    statement_event_kinds,
    threshold_design,
)

__all__ = [
    "ArmSummaryBlock",
    "EVENT_KIND_CODES",
    "MARGINAL_IPD_POTENTIAL",
    "ModelInputs",
    "build_model",
    "check_forward_sampling",
    "chi_nodes",
    "data_values",
    "lkj_correlation",
    "log_prob_event",
    "log_prob_event_coded",
    "marginalises_change",
    "prepare_inputs",
    "prior_sampling_model",
    "resolve_prior",
    "simulate_statement_events",
    "simulate_statement_statistics",
    "statement_event_kinds",
    "threshold_design",
]
