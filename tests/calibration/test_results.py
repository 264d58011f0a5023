"""SBC run folders, and the recorded SBC figures of VALIDATION.md against the code.

Every full SBC run kept in ``validation/sbc_*/`` stores the ranks of the truth and the chi-square
test it reported. Recomputing the test from the saved ranks with the current ``uniformity`` must
give the same p-values and the same pass/fail: the figures in VALIDATION.md are what the code
computes, not hand-copied numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bayes_stenosis.calibration import load_results, run_label

ROOT = Path(__file__).resolve().parents[2]
RUNS = sorted(p.parent for p in (ROOT / "validation").glob("sbc_*/sbc_summary.json"))


@pytest.mark.skipif(not RUNS, reason="no saved SBC runs (validation/ is not in this checkout)")
@pytest.mark.parametrize("folder", RUNS, ids=[p.name for p in RUNS])
def test_recorded_sbc_results_are_what_the_uniformity_test_gives_on_the_saved_ranks(folder):
    recorded_summary = json.loads((folder / "sbc_summary.json").read_text())["results"]
    for result, recorded_run in zip(load_results(folder), recorded_summary, strict=True):
        label = run_label(result.case, result.wrong)
        recomputed = result.tests.set_index("quantity")
        recorded = pd.read_csv(folder / f"{label}_tests.csv").set_index("quantity")
        assert sorted(recomputed.index) == sorted(recorded.index)
        pd.testing.assert_series_equal(
            recomputed.loc[recorded.index, "p_value"], recorded["p_value"], rtol=1e-9, check_names=False
        )
        assert result.passed == recorded_run["passed"], label
