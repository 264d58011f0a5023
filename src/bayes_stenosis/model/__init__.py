"""``model``: public API (re-exported from its modules)."""

from bayes_stenosis.model.builder import (
    EVENT_KIND_CODES,
    MARGINAL_IPD_POTENTIAL,
    ArmSummaryBlock,
    ModelInputs,
    build_model,
    check_forward_sampling,
    chi_nodes,
    data_values,
    lkj_correlation,
    log_prob_event,
    log_prob_event_coded,
    marginalises_change,
    prepare_inputs,
    prior_sampling_model,
    resolve_prior,
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
    "threshold_design",
]
