"""The answer first: the headline table (delta with its interval in natural units, P(equiv), the prior's,
the decision; the range over a sensitivity sweep beside the run) as the report's first table, what
``summarize`` prints and what ``summarize --markdown`` writes."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_stenosis.cli import app
from bayes_stenosis.decisions import probability_text
from bayes_stenosis.outputs import build_context, headline_table, render_page
from bayes_stenosis.run import load_run

runner = CliRunner()


def add_sweep(run_folder, decisions: pd.DataFrame, spec_sha256: str | None = None):
    """A sensitivity sweep's robustness table beside the run (``RUN/../sensitivity/``), 5 fits per row, made
    from the run's study files and spec (or the spec ``spec_sha256``)."""
    rows = []
    for rec in decisions[decisions.scope != "any_beyond_margin"].to_dict("records"):
        rows.append(
            {
                "scope": rec["scope"],
                "time": rec["time"],
                "outcome": rec["outcome"],
                "prob_equivalence_reference": rec["prob_equivalence"],
                "decision_reference": rec["decision"],
                "prob_equivalence_min": 0.5,
                "configuration_min": "vague",
                "prob_equivalence_max": 0.99,
                "configuration_max": "small_difference",
                "n_fits": 5,
                "n_equivalent": 3,
                "n_failed_diagnostics": 0,
            }
        )
    sweep = run_folder.parent / "sensitivity"
    sweep.mkdir()
    pd.DataFrame(rows).to_csv(sweep / "robustness.csv", index=False)
    pd.DataFrame(
        [
            {"configuration": f"fit{i}", "scope": "cell", "prob_equivalence": 0.9, "decision": "undecided"}
            for i in range(5)
        ]
    ).to_csv(sweep / "sensitivity.csv", index=False)
    run = json.loads((run_folder / "manifest.json").read_text())
    same = {"study": {"sha256": run["study"]["sha256"]}, "spec": {"sha256": spec_sha256 or run["spec"]["sha256"]}}
    (sweep / "manifest.json").write_text(json.dumps({**same, "n_fits": 5}) + "\n")


def test_headline_rows_are_the_runs_numbers(pristine_run):
    run = load_run(pristine_run)
    decisions, contrasts, manifest = run.decisions, run.contrasts, run.manifest
    table = headline_table(decisions, contrasts, manifest)
    assert list(table.columns) == [
        "scope",
        "week",
        "outcome",
        "margin",
        "delta",
        "p_equiv",
        "prior_p_equiv",
        "decision",
    ]
    # 4 cells, one joint row per week and one over all cells; "some cell beyond" is the all-cells complement
    assert list(table.scope) == ["cell"] * 4 + ["joint_time"] * 2 + ["joint_all"]
    assert list(table.outcome[4:]) == ["all outcomes", "all outcomes", "all cells"]
    first = contrasts.iloc[0]
    assert (first.time, first.outcome) == (4.0, "ODI")
    # margin 10 points: one decimal (two significant digits of the margin)
    assert table.delta[0] == (
        f"{first.mean_natural:.1f} points ({first.lower_natural:.1f} to {first.upper_natural:.1f})"
    )
    assert table.margin[0] == "±10" and table.week[0] == "4" and table.week[6] == "all"
    n = manifest["sampler"]["chains"] * manifest["sampler"]["draws"]
    for row, rec in zip(
        table.to_dict("records"), decisions[decisions.scope != "any_beyond_margin"].to_dict("records"), strict=True
    ):
        assert row["p_equiv"] == probability_text(
            rec["prob_equivalence"], rec["mcse_prob_equivalence"], n, threshold=rec["decision_threshold"]
        )
        assert row["decision"] == rec["decision"]
    assert table.delta[4] == "" and table.margin[6] == ""


def test_summarize_prints_the_headline_and_writes_it_as_markdown(run_copy, tmp_path):
    decisions = load_run(run_copy).decisions
    add_sweep(run_copy, decisions)
    md = tmp_path / "t.md"
    result = runner.invoke(app, ["summarize", str(run_copy), "--markdown", str(md)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    table = headline_table(decisions, load_run(run_copy).contrasts, load_run(run_copy).manifest)
    for text in (table.delta[0], "δ mean (95 % ETI)", "prior", "0.500-0.990 (3/5)", "sweep: lowest-highest"):
        assert text in result.output, text
    assert "beyond its margin" in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 120  # fits a log or CI console
    written = md.read_text()
    header = written.splitlines()[0]
    assert header == (
        "| week | outcome | margin | δ mean (95 % ETI) | P(equiv) | prior P(equiv) | "
        "P(equiv) range over the sensitivity fits (fits equivalent) | decision |"
    )
    assert "prob_equivalence" not in written and table.delta[0] in written
    assert written.count("0.500-0.990 (3/5)") == 7  # every cell and joint row


def test_report_opens_with_the_headline(run_copy):
    add_sweep(run_copy, load_run(run_copy).decisions)
    context = build_context(run_copy)
    assert context["headline"]["n_fits"] == 5
    assert context["headline"]["columns"][-2] == "P(equiv) range over the sensitivity fits (fits equivalent)"
    page = render_page(load_run(run_copy))
    answer = page.index('<table class="headline">')
    assert answer < page.index('id="question"') and answer < page.index("Diagnostics verdict")
    assert page.count("0.500-0.990 (3/5)") == 7


def test_some_cell_beyond_its_margin_has_its_own_probability_everywhere(run_copy):
    """decisions.csv's "any cell beyond its margin" row holds P(some cell |delta| >= m) only (no P(equiv)
    copied from the all-cells row); summarize and the report show that number, not the all-cells P(equiv)."""
    raw = pd.read_csv(run_copy / "decisions.csv")
    beyond = raw[raw.scope == "any_beyond_margin"].iloc[0]
    joint = raw[raw.scope == "joint_all"].iloc[0]
    assert pd.isna(beyond.prob_equivalence) and pd.isna(beyond.prob_equivalence_prior)
    assert beyond.prob_not_equivalent == pytest.approx(1 - joint.prob_equivalence, abs=1e-12)
    assert beyond.prob_not_equivalent_prior == pytest.approx(1 - joint.prob_equivalence_prior, abs=1e-12)
    manifest = load_run(run_copy).manifest
    n = manifest["sampler"]["chains"] * manifest["sampler"]["draws"]
    text = probability_text(beyond.prob_not_equivalent, beyond.mcse_prob_not_equivalent, n)
    result = runner.invoke(app, ["summarize", str(run_copy)], env={"COLUMNS": "200"})
    assert f"beyond its margin) = {text}" in result.output
    page = render_page(load_run(run_copy))
    assert f"some cell with evidence lies beyond its margin: {text} (MCSE " in page
    assert "; prior " in page


def test_the_markdown_file_carries_the_any_cell_line_and_the_missing_sweep_note(run_copy, tmp_path):
    """``--markdown`` is what goes into a review: the answer table, then the rule, the any-cell
    probability (as summarize prints it) and, without a sweep beside the run, how to make one."""
    md = tmp_path / "answer.md"
    result = runner.invoke(app, ["summarize", str(run_copy), "--markdown", str(md)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    written = md.read_text()
    beyond_line = next(line for line in result.output.splitlines() if "beyond its margin) = " in line)
    assert beyond_line.strip() in written
    assert "(MCSE " in beyond_line and "prior " in beyond_line
    assert "bayes-stenosis sensitivity" in written  # the no-sweep note, with its command
