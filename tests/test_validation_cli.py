"""The validation entry points, and the recorded SBC figures of VALIDATION.md against the code.

Every full SBC run kept in ``validation/sbc_*/`` stores the ranks of the truth and the chi-square
test it reported. Recomputing the test from the saved ranks with the current ``sbc.uniformity`` must
give the same p-values and the same pass/fail: the figures in VALIDATION.md are what the code
computes, not hand-copied numbers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_stenosis import calibration as sbc
from bayes_stenosis.cli import app

ROOT = Path(__file__).resolve().parents[1]
RUNS = sorted(p.parent for p in (ROOT / "validation").glob("sbc_*/sbc_summary.json"))


@pytest.mark.skipif(not RUNS, reason="no saved SBC runs (validation/ is not in this checkout)")
@pytest.mark.parametrize("folder", RUNS, ids=[p.name for p in RUNS])
def test_recorded_sbc_results_are_what_the_uniformity_test_gives_on_the_saved_ranks(folder):
    recorded_summary = json.loads((folder / "sbc_summary.json").read_text())["results"]
    for result, recorded_run in zip(sbc.load_results(folder), recorded_summary, strict=True):
        label = sbc.run_label(result.case, result.wrong)
        recomputed = result.tests.set_index("quantity")
        recorded = pd.read_csv(folder / f"{label}_tests.csv").set_index("quantity")
        assert sorted(recomputed.index) == sorted(recorded.index)
        pd.testing.assert_series_equal(
            recomputed.loc[recorded.index, "p_value"], recorded["p_value"], rtol=1e-9, check_names=False
        )
        assert result.passed == recorded_run["passed"], label


@pytest.mark.skipif(not RUNS, reason="no saved SBC runs (validation/ is not in this checkout)")
def test_validation_subcommand_and_module_reach_the_calibration_studies(tmp_path):
    folder = tmp_path / "sbc"
    shutil.copytree(ROOT / "validation" / "sbc_full_terms", folder)
    png = folder / "arm_summary_change_ranks.png"
    png.unlink()
    result = CliRunner().invoke(app, ["validation", "plot", str(folder)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # redrawn from the saved ranks
    # the same parser as `python -m bayes_stenosis.calibration`; bad input: one line, exit 2
    proc = subprocess.run(
        [sys.executable, "-m", "bayes_stenosis.calibration", "sbc", "--cases", "no_such_case"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: python -m bayes_stenosis.calibration: unknown case(s): no_such_case"
    ]
