"""The sensitivity sweep beside a run: shown only when it is a sweep of the run's own study files and spec;
without one, the report and ``summarize`` say what making one takes (command, fits, estimated minutes)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bayes_stenosis.analyses import write_sweep_plan
from bayes_stenosis.cli import app
from bayes_stenosis.outputs import build_context, render_page, summarize_run
from bayes_stenosis.outputs.sweep import SWEEP_PLAN_FILE, sweep_plan
from bayes_stenosis.run import load_run
from bayes_stenosis.spec import load_spec
from bayes_stenosis.study import load_study
from tests.outputs.test_headline import add_sweep

runner = CliRunner()


@pytest.fixture
def planned_run(run_copy):
    """The synthetic run with the plan ``fit`` writes, and timings: 100 s to fit, 40 of them compiling."""
    spec, _ = load_spec("default")
    plan = write_sweep_plan(run_copy, load_study(run_copy / "inputs" / "study"), spec)
    manifest_path = run_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["timings_seconds"] |= {"fit_total": 100.0, "compile": 40.0}
    manifest_path.write_text(json.dumps(manifest) + "\n")
    return run_copy, plan


def test_the_plan_is_the_specs_grid_for_the_study(planned_run):
    run_copy, plan = planned_run
    written = json.loads((run_copy / SWEEP_PLAN_FILE).read_text())
    assert written == plan and plan["n_fits"] == len(plan["configurations"]) > 1
    # the default spec sweeps five prior sets; the reference fit is the spec's default prior
    prior_axis = next(a for a in plan["axes"] if a["axis"] == "prior_set")
    assert len(prior_axis["values"]) == 5 and plan["reference"].startswith("weakly_informative")


def test_report_without_a_sweep_gives_the_command_the_fits_and_their_cost(planned_run):
    run_copy, plan = planned_run
    seen = sweep_plan(load_run(run_copy))
    # 60 s per fit (this run's fit without its compile) for every fit of the grid
    assert seen["per_fit_seconds"] == 60 and seen["minutes"] == round(plan["n_fits"] * 60 / 60)
    root = run_copy.parent.parent
    assert seen["command"].startswith("bayes-stenosis sensitivity ") and seen["command"].endswith(f"--out {root}")
    page = render_page(load_run(run_copy))
    section = page[page.index('id="sensitivity"') : page.index('id="reproduce"')]
    assert "Not run for this run" in section and seen["command"] in section
    assert f"{plan['n_fits']} fits" in section and f"About <b>{seen['minutes']} min</b>" in section
    assert "No sensitivity analysis found" not in page
    answer = page[page.index('id="answer"') : page.index('id="question"')]
    assert "Not yet checked against its assumptions" in answer and f"{seen['minutes']} min" in answer
    note = summarize_run(run_copy).sweep_note
    assert seen["command"] in note and f"{plan['n_fits']} times" in note
    result = runner.invoke(app, ["summarize", str(run_copy)], env={"COLUMNS": "300"})
    assert result.exit_code == 0 and "not yet checked against its assumptions" in result.output


def test_a_sweep_of_another_spec_beside_the_run_is_not_shown_as_its_own(run_copy):
    add_sweep(run_copy, load_run(run_copy).decisions, spec_sha256="1" * 64)
    context = build_context(run_copy)
    assert context["headline"]["n_fits"] is None and "sensitivity" not in context
    assert "other spec (SHA-256 differ)" in context["sweep_missing"]["mismatch"]
    assert "sensitivity" not in summarize_run(run_copy).headline
    page = render_page(load_run(run_copy))
    assert "0.500-0.990 (3/5)" not in page and "other spec (SHA-256 differ)" in page
