"""Commands over saved run folders (``cli/runs.py``): ``diagnose`` on a deliberately bad fit (verdict
fail; ``--strict`` exits 3), and ``diagnose`` / ``report`` refuse a folder that is not a run."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bayes_stenosis.cli import app
from bayes_stenosis.testing import write_mixed_evidence_study
from bayes_stenosis.workflow import fit

runner = CliRunner()


@pytest.mark.slow
def test_a_deliberately_bad_fit_is_a_fail_and_strict_exits_3(tmp_path):
    study = write_mixed_evidence_study(tmp_path / "study")
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
