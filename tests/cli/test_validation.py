"""``bayes-stenosis validation``: the subcommands reach the calibration studies, and bad options give one
line on stderr with exit code 2 (no usage box, no traceback)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bayes_stenosis.calibration import CASES
from bayes_stenosis.cli import app

ROOT = Path(__file__).resolve().parents[2]
SAVED_RUN = ROOT / "validation" / "sbc_full_terms"


def invoke(*args: str):
    return CliRunner().invoke(app, ["validation", *args], prog_name="bayes-stenosis")


@pytest.mark.skipif(not SAVED_RUN.is_dir(), reason="no saved SBC runs (validation/ is not in this checkout)")
def test_plot_redraws_the_rank_histograms_of_a_saved_run(tmp_path):
    folder = tmp_path / "sbc"
    shutil.copytree(SAVED_RUN, folder)
    png = folder / "arm_summary_change_ranks.png"
    png.unlink()
    result = invoke("plot", str(folder))
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # redrawn from the saved ranks
    assert f"wrote {png}" in result.stdout


def test_the_subcommands_are_listed():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("sbc", "coverage", "coverage-merge", "plot"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "args, line",
    [
        (
            ["sbc", "--cases", "contrast,no_such_case"],
            "error: bayes-stenosis validation sbc: Invalid value for '--cases': unknown: no_such_case "
            f"(expected {', '.join(CASES)})",
        ),
        (
            ["sbc", "--mode", "slow"],
            "error: bayes-stenosis validation sbc: Invalid value for '--mode': unknown: slow (expected quick, full)",
        ),
        (["sbc", "--bogus"], "error: bayes-stenosis validation sbc: No such option: --bogus"),
        (
            ["coverage", "--trial-range", "5"],
            "error: bayes-stenosis validation coverage: Invalid value for '--trial-range': '5': expected START:STOP",
        ),
        (
            ["coverage", "--trials", "10", "--trial-range", "5:20"],
            "error: bayes-stenosis validation coverage: Invalid value for '--trial-range': '5:20' is not within "
            "the 10 trials planned",
        ),
        (
            ["coverage", "--truths", "prior,maybe"],
            "error: bayes-stenosis validation coverage: Invalid value for '--truths': unknown: maybe "
            "(expected prior, zero, margin)",
        ),
        (
            ["coverage", "--level", "threshold"],
            "error: bayes-stenosis validation coverage: Invalid value for '--level': unknown: threshold "
            "(expected arm_summary, arm_summary_change, contrast, ipd)",
        ),
        (
            ["coverage", "--outcomes", "ODI,VAS"],
            "error: bayes-stenosis validation coverage: Invalid value for '--outcomes': unknown: VAS "
            "(expected ODI, RMDQ)",
        ),
        (
            ["coverage", "--times", "4,eight"],
            "error: bayes-stenosis validation coverage: Invalid value for '--times': '4,eight': expected "
            "comma-separated numbers",
        ),
        (["coverage-merge", "out"], "error: bayes-stenosis validation coverage-merge: Missing argument 'parts'."),
        (["no-such-command"], "error: bayes-stenosis validation: No such command 'no-such-command'."),
    ],
)
def test_bad_options_give_one_line_and_exit_code_2(args, line):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    (got,) = result.stderr.splitlines()
    assert got.startswith(line), got  # click may add "(Possible options: ...)" to an unknown option
    assert result.stdout == ""


def test_bad_folders_give_one_line_and_exit_code_2(tmp_path):
    result = invoke("plot", str(tmp_path))
    assert (result.exit_code, result.stderr.splitlines()) == (
        2,
        [f"error: {tmp_path}: not an SBC run folder (no sbc_summary.json)"],
    )
    result = invoke("coverage-merge", str(tmp_path / "out"), str(tmp_path / "part"))
    assert (result.exit_code, result.stderr.splitlines()) == (
        2,
        [f"error: {tmp_path / 'part' / 'coverage_prior.json'}: not found (not a part of a coverage run?)"],
    )
