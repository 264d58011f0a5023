"""``bayes-stenosis design`` on the synthetic run, against an in-process scheduler given by --scheduler and
by DASK_SCHEDULER_ADDRESS; bad --n is a one-line error."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_stenosis.cli import app
from bayes_stenosis.engine import SCHEDULER_ENV

runner = CliRunner()


@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_design_command_writes_the_folder(pristine_run, tmp_path, scheduler, monkeypatch):
    args = ["design", str(pristine_run), "--n", "40,80", "--trials", "30", "--change-sd", "1.2", "--no-progress"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--scheduler", scheduler])
    assert result.exit_code == 0, result.output
    assert "all cells equivalent with assurance >= 0.8" in result.output
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["engine"]["cluster"] == {"kind": "scheduler", "address": scheduler, "n_workers": 2}
    assert "command_line" in manifest and manifest["input_run_manifest_sha256"]
    monkeypatch.setenv(SCHEDULER_ENV, scheduler)
    again = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert again.exit_code == 0, again.output
    first, second = (pd.read_csv(tmp_path / name / "design.csv") for name in ("a", "b"))
    pd.testing.assert_frame_equal(first, second)
    refused = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert refused.exit_code == 2 and "exists" in refused.output


def test_bad_sizes_are_one_line_errors(pristine_run):
    result = runner.invoke(app, ["design", str(pristine_run), "--n", "40,x"])
    assert result.exit_code == 2 and "comma-separated whole numbers" in result.output
