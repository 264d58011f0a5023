"""``decisions``: numbers from draws, pure (no PyMC, no files).

``conventions`` (dims, events, interval convention, decision rule) -> ``draws`` (checks and MCSE) ->
``contrasts`` | ``events`` -> ``table`` | ``curves`` | ``approximation`` -> ``likelihood``.
"""

from bayes_stenosis.decisions.approximation import (
    APPROXIMATION_SCHEMA,
    correlation_matrix,
    normal_approximation,
    validate_approximation,
)
from bayes_stenosis.decisions.contrasts import summarise_contrasts
from bayes_stenosis.decisions.conventions import CELL_DIMS, DIRECTIONS, EVENTS, SAMPLE_DIMS, DecisionRule, IntervalSpec
from bayes_stenosis.decisions.curves import margin_curves
from bayes_stenosis.decisions.events import scoped_event_indicators
from bayes_stenosis.decisions.likelihood import (
    PriorNormal,
    divide_out_prior,
    likelihood_block,
    moment_matched_prior,
    normal_prior,
)
from bayes_stenosis.decisions.table import decision_table, probability_text

__all__ = [
    "APPROXIMATION_SCHEMA",
    "CELL_DIMS",
    "DIRECTIONS",
    "DecisionRule",
    "PriorNormal",
    "correlation_matrix",
    "divide_out_prior",
    "likelihood_block",
    "moment_matched_prior",
    "normal_prior",
    "EVENTS",
    "IntervalSpec",
    "SAMPLE_DIMS",
    "decision_table",
    "margin_curves",
    "normal_approximation",
    "probability_text",
    "scoped_event_indicators",
    "summarise_contrasts",
    "validate_approximation",
]
