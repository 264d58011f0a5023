"""``bayes-stenosis synthesize`` (``cli/synthesis.py``): the table and the folder, and one-line errors with
exit code 2 (a synthesis folder as input, a malformed --cell, a study not among the runs, an existing output)."""

from __future__ import annotations

from typer.testing import CliRunner

from bayes_stenosis.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["synthesize", *map(str, args)])


def test_synthesize_prints_the_answer_and_writes_the_folder(synthesis_runs, tmp_path):
    out = tmp_path / "syn"
    result = invoke(synthesis_runs["a"], synthesis_runs["cm"], "--outcome", "VAS", "--time", "4", "--out", out)
    assert result.exit_code == 0, result.output
    for text in ("pooled", "new_study", "tau (median)", "STANDARDIZED", "InvGamma(shape 1.75, scale 0.57)"):
        assert text in result.output
    assert (out / "synthesis.json").is_file() and (out / "forest.png").is_file()
    again = invoke(synthesis_runs["a"], synthesis_runs["cm"], "--outcome", "VAS", "--time", "4", "--out", out)
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_a_synthesis_folder_as_input_is_a_one_line_error(synthesis_runs, tmp_path):
    out = tmp_path / "syn"
    assert (
        invoke(synthesis_runs["a"], synthesis_runs["b"], "--outcome", "VAS", "--time", "4", "--out", out).exit_code == 0
    )
    result = invoke(out, synthesis_runs["a"], "--outcome", "VAS", "--time", "4", "--out", tmp_path / "again")
    assert result.exit_code == 2, result.output
    assert "POSTERIOR" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "again").exists()


def test_bad_cells_are_one_line_errors(synthesis_runs, tmp_path):
    bad = invoke(synthesis_runs["a"], "--cell", "trial_a=VAS", "--out", tmp_path / "x")
    assert bad.exit_code == 2 and "STUDY=OUTCOME@TIME" in bad.output
    stranger = invoke(
        synthesis_runs["a"], "--outcome", "VAS", "--time", "4", "--cell", "nobody=VAS@4", "--out", tmp_path / "y"
    )
    assert stranger.exit_code == 2 and "nobody" in stranger.output
    tau = invoke(
        synthesis_runs["a"], "--outcome", "VAS", "--time", "4", "--tau-prior", "half_normal:-1", "--out", tmp_path / "z"
    )
    assert tau.exit_code == 2 and "positive" in tau.output
    assert not any((tmp_path / name).exists() for name in ("x", "y", "z"))


def test_commands_over_one_fit_refuse_a_synthesis_folder_and_leave_it_intact(synthesis_runs, tmp_path):
    out = tmp_path / "syn"
    assert (
        invoke(synthesis_runs["a"], synthesis_runs["b"], "--outcome", "VAS", "--time", "4", "--out", out).exit_code == 0
    )
    before = sorted(p.name for p in out.iterdir())
    for args in (
        ["summarize"],
        ["diagnose"],
        ["report"],
        ["export", "--format", "json", "--out", str(tmp_path / "x.json")],
    ):
        result = runner.invoke(app, [args[0], str(out), *args[1:]])
        assert result.exit_code == 2, (args, result.output)
        assert "a synthesis folder, not a fit's run" in result.output and len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == before
    assert runner.invoke(app, ["diagnose", str(out), "--verify"]).exit_code == 2  # verified, then refused
