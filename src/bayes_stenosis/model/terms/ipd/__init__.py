"""The ``ipd`` likelihood term: patient-level scores feeding the latent change structure of :mod:`model`.

``data`` (the patients' standardized arrays, their scale and missingness patterns), ``likelihood`` (the
term itself, with its maths), ``summary`` (per-cell summaries of the data and of predictive replicates,
the term's predictive hook).
"""

from bayes_stenosis.model.terms.ipd.data import IPDInputs, ipd_scale, missing_table, missing_text, prepare_ipd_inputs
from bayes_stenosis.model.terms.ipd.likelihood import (
    IPD_BASELINE_POTENTIAL,
    FollowupPattern,
    IPDSettings,
    add_ipd_followups,
    add_ipd_terms,
    ipd_followup_patterns,
    mvnormal_random,
    mvnormal_stats_logp,
)
from bayes_stenosis.model.terms.ipd.summary import ipd_observed_summary, ipd_predictive_summary

__all__ = [
    "IPD_BASELINE_POTENTIAL",
    "FollowupPattern",
    "IPDInputs",
    "IPDSettings",
    "add_ipd_followups",
    "add_ipd_terms",
    "ipd_followup_patterns",
    "ipd_observed_summary",
    "ipd_predictive_summary",
    "ipd_scale",
    "missing_table",
    "missing_text",
    "mvnormal_random",
    "mvnormal_stats_logp",
    "prepare_ipd_inputs",
]
