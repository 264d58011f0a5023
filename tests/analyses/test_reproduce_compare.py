"""``analyses.reproduce.compare``: the decimals of an entered number, which set its rounding tolerance."""

from __future__ import annotations

from bayes_stenosis.analyses import (
    decimals,
)


def test_decimals_of_entered_numbers():
    assert decimals(7.8) == 1
    assert decimals(12.0) == 0
    assert decimals(0.4382) == 4
    assert decimals(1e-5) == 5
