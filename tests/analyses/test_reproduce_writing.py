"""``analyses.reproduce.writing`` through ``bayes-stenosis reproduce``: the folder it writes (CSV and
markdown), and an existing one refused."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from bayes_stenosis.cli import app

runner = CliRunner()


def test_cli_writes_the_folder_and_refuses_to_overwrite(tmp_path):
    result = runner.invoke(app, ["reproduce", "tafazal2007", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "tafazal2007" / "reproduce"
    table = pd.read_csv(folder / "reproduce.csv")
    assert len(table) == 2 and (folder / "reproduce.md").read_text().startswith("# tafazal2007")
    again = runner.invoke(app, ["reproduce", "tafazal2007", "--out", str(tmp_path)])
    assert again.exit_code == 2 and "--overwrite" in again.output
