"""``decisions.conventions``: the interval convention's label and checks, and the decision rule."""

from __future__ import annotations

import pytest

from bayes_stenosis import decisions as dec


def test_interval_spec_label_and_validation():
    assert dec.IntervalSpec().label == "95% equal-tailed interval"
    assert dec.IntervalSpec("hdi", 0.89).label == "89% highest-density interval"
    assert dec.IntervalSpec("eti", 0.975).label == "97.5% equal-tailed interval"
    with pytest.raises(ValueError, match="kind"):
        dec.IntervalSpec("central", 0.95)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prob"):
        dec.IntervalSpec("eti", 95)


def test_decision_rule_thresholds():
    rule = dec.DecisionRule()
    assert rule.threshold == 0.975
    assert rule.text == (
        '"equivalent" when P(|delta| < m) >= 0.975; "not equivalent" when P(|delta| >= m) >= 0.975; '
        'otherwise "undecided"'
    )
    assert rule.decide(0.99) == "equivalent"
    assert rule.decide(0.975) == "equivalent"  # boundary: >=
    assert rule.decide(0.974) == "undecided"
    assert rule.decide(0.5) == "undecided"
    assert rule.decide(0.026) == "undecided"
    assert rule.decide(0.025) == "not equivalent"  # P(|delta| >= m) = 0.975
    assert rule.decide(0.0) == "not equivalent"
    assert rule.decide(float("nan")) == "undecided"
    custom = dec.DecisionRule(0.9)
    assert "0.9;" in custom.text and "0.975" not in custom.text
    assert custom.decide(0.92) == "equivalent"
    assert custom.decide(0.9) == "equivalent"
    assert custom.decide(0.89) == "undecided"
    assert custom.decide(0.08) == "not equivalent"
    assert custom.decide(0.11) == "undecided"
    for bad in (0.5, 0.3, 1.2):
        with pytest.raises(ValueError, match="threshold"):
            dec.DecisionRule(bad)
