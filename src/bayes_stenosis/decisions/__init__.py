"""``decisions``: public API (re-exported from its modules)."""

from bayes_stenosis.decisions.core import (
    APPROXIMATION_SCHEMA,
    CELL_DIMS,
    DIRECTIONS,
    EVENTS,
    SAMPLE_DIMS,
    DecisionRule,
    IntervalSpec,
    decision_table,
    margin_curves,
    normal_approximation,
    scoped_event_indicators,
    summarise_contrasts,
    validate_approximation,
)

__all__ = [
    "APPROXIMATION_SCHEMA",
    "CELL_DIMS",
    "DIRECTIONS",
    "DecisionRule",
    "EVENTS",
    "IntervalSpec",
    "SAMPLE_DIMS",
    "decision_table",
    "margin_curves",
    "normal_approximation",
    "scoped_event_indicators",
    "summarise_contrasts",
    "validate_approximation",
]
