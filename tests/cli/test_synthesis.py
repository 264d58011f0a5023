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


def test_synthesize_cells_writes_a_multivariate_folder(synthesis_runs, tmp_path):
    """--cells: the per-cell and joint answer printed; the folder (checksummed like a run) has one row per
    study and cell, per cell the pooled and new-study rows, the joint rows, tau and r; posterior.nc reads back."""
    import json

    import pandas as pd

    from bayes_stenosis.run import load_run, read_manifest
    from bayes_stenosis.run.integrity import verify_folder

    out = tmp_path / "mv"
    runs = [synthesis_runs[k] for k in ("both_a", "both_b", "a")]
    result = invoke(*runs, "--cells", "VAS@4,ODI@4", "--between-correlation", "fixed:0.5", "--out", out)
    assert result.exit_code == 0, result.output
    for text in ("joint_pooled", "joint_new_study", "r fixed at 0.5", "trial_a lacks ODI@4", "SIMULATED"):
        assert text in result.output
    manifest = read_manifest(out)
    assert manifest["kind"] == "synthesis" and manifest["multivariate"] and verify_folder(out, manifest) == []
    assert manifest["cells"] == ["VAS@4", "ODI@4"] and manifest["priors"]["r"]["value"] == 0.5
    table = pd.read_csv(out / "synthesis.csv")
    assert list(table["row"]).count("study") == 5 and list(table["row"]).count("pooled") == 2
    record = json.loads((out / "synthesis.json").read_text())
    assert set(record["pooled_by_cell"]) == {"VAS@4", "ODI@4"}
    assert "P(every pooled effect inside its margin)" in (out / "report.md").read_text()
    posterior = load_run(out).idata.posterior
    assert list(posterior["cell"].values) == ["VAS@4", "ODI@4"] and "r" in posterior


def test_bad_multivariate_options_are_one_line_errors(synthesis_runs, tmp_path):
    runs = [synthesis_runs["both_a"], synthesis_runs["both_b"]]
    bad = invoke(*runs, "--cells", "VAS4,ODI@4", "--out", tmp_path / "x")
    assert bad.exit_code == 2 and "OUTCOME@TIME" in bad.output
    both = invoke(*runs, "--cells", "VAS@4,ODI@4", "--outcome", "VAS", "--out", tmp_path / "y")
    assert both.exit_code == 2 and "cannot be combined with --outcome" in both.output
    r = invoke(*runs, "--cells", "VAS@4,ODI@4", "--between-correlation", "fixed:2", "--out", tmp_path / "z")
    assert r.exit_code == 2 and "(-1, 1)" in r.output
    one = ("--outcome", "VAS", "--time", "4")
    alone = invoke(*runs, *one, "--between-correlation", "fixed:0.3", "--out", tmp_path / "w")
    assert alone.exit_code == 2 and "only to a multivariate synthesis" in alone.output
    assert not any((tmp_path / name).exists() for name in ("x", "y", "z", "w"))
