"""Commands over saved run folders (``cli/runs.py``): ``diagnose`` on a deliberately bad fit (verdict
fail; ``--strict`` exits 3), and ``diagnose`` / ``report`` refuse a folder that is not a run."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bayes_stenosis.cli import app
from bayes_stenosis.testing import write_study
from bayes_stenosis.workflow import fit

runner = CliRunner()


def _study(folder: Path) -> Path:
    rows_contrast = [
        {"outcome": "ODI", "time": t, "measure": "change", "direction": "new_minus_reference", "estimate": e, "se": 3}
        for t, e in ((4, -2), (8, 1))
    ]
    rows_threshold = [
        {
            "outcome": "VAS",
            "time": t,
            "comparison": "between",
            "relation": ">",
            "alpha": 0.05,
            "test": "two_sample_t",
        }
        for t in (4, 8)
    ]
    return write_study(
        folder,
        outcomes={
            "ODI": {"instrument": "ODI", "scale_max": 100, "margin": 10, "reference_sd": 16},
            "VAS": {"instrument": "VAS", "scale_max": 100, "margin": 15, "reference_sd": 20},
        },
        follow_up=(4.0, 8.0),
        rows={"contrasts.csv": rows_contrast, "thresholds.csv": rows_threshold},
    )


@pytest.mark.slow
def test_a_deliberately_bad_fit_is_a_fail_and_strict_exits_3(tmp_path):
    study = _study(tmp_path / "study")
    result = fit(
        study, seed=3, chains=2, draws=20, tune=20, out=tmp_path / "out", progress=False, plots=False, report=False
    )
    assert result.verdict_status == "fail"
    assert not (result.folder / "report.html").exists()  # --no-report honoured
    loose = runner.invoke(app, ["diagnose", str(result.folder)])
    assert loose.exit_code == 0, loose.output
    assert "verdict: fail" in loose.output and "bulk ESS" in loose.output
    strict = runner.invoke(app, ["diagnose", str(result.folder), "--strict"])
    assert strict.exit_code == 3, strict.output


def test_diagnose_and_report_refuse_a_folder_that_is_not_a_run(tmp_path):
    for command in ("diagnose", "report"):
        result = runner.invoke(app, [command, str(tmp_path)])
        assert result.exit_code == 2, result.output
        assert "not a complete run folder" in result.output
