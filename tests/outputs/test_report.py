"""Reviewer outputs of a run (``outputs.report``): every plot, the inputs, report.html checked in a real
headless Chromium (every image decoded, no console errors, no network request), and the decision
probabilities ``diagnose`` lists, which match the decision table.

One small study is fitted once per module (two outcomes: ODI with reported contrasts, VAS with
"P>0.05" threshold statements only, so both kinds of predictive check are drawn).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_stenosis.cli import app
from bayes_stenosis.diagnostics import decision_probability_table
from bayes_stenosis.testing import write_mixed_evidence_study
from bayes_stenosis.workflow import fit

# one worker runs this module: its module-scoped fixture is costly (pytest -n 2 --dist loadgroup)
pytestmark = pytest.mark.xdist_group("report_run")

runner = CliRunner()

#: Flags for Chromium in a closed network: without the background-networking ones it tries to
#: reach Google services and logs refused connections.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    study = write_mixed_evidence_study(root / "study")
    result = fit(study, seed=5, chains=2, draws=300, tune=300, out=root / "out", progress=False)
    return result.folder


@pytest.mark.slow
def test_fit_writes_every_plot_inputs_and_the_report(run_folder):
    plots = sorted(p.name for p in (run_folder / "plots").glob("*.png"))
    for name in (
        "energy.png",
        "forest.png",
        "margin_curves.png",
        "ppc.png",
        "prior_posterior.png",
        "prior_predictive.png",
        "trace_treatment_difference.png",
        "rank_treatment_difference.png",
    ):
        assert name in plots, name
    assert (run_folder / "inputs" / "spec.toml").is_file()
    assert (run_folder / "inputs" / "study" / "study.toml").is_file()
    labels = pd.read_csv(run_folder / "observed_quantities.csv")
    assert set(labels.variable) == {"obs_contrast", "threshold_event"}
    page = (run_folder / "report.html").read_text()
    # self-contained: every image is a data URI, no stylesheet/script/frame from anywhere
    images = re.findall(r"<img [^>]*src=\"([^\"]+)\"", page)
    assert len(images) == len(plots)
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r"<(script|link|iframe)\b", page)
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    # BARG sections and the provenance of every evidence row
    for heading in (
        "Question and goals",
        "Data and provenance",
        "Model and priors",
        "Prior predictive check",
        "Computation and diagnostics",
        "Posterior predictive check",
        "Results and decisions",
        "Sensitivity",
        "Reproducibility",
    ):
        assert heading in page, heading
    assert "TEST FIXTURE: simulated for tests" in page  # the evidence rows' source column
    assert "Bartos" in page  # the prior's justification, from the spec's comments
    manifest = json.loads((run_folder / "manifest.json").read_text())
    assert f"--seed {manifest['sampler']['seed']}" in page and "--draws 300" in page


@pytest.mark.slow
def test_decision_probability_diagnostics_match_the_decision_table(run_folder):
    decisions = pd.read_csv(run_folder / "decisions.csv")
    idata = az.from_netcdf(str(run_folder / "posterior.nc"))
    table = decision_probability_table(idata.posterior["delta_natural"], decisions, 0.975)
    for rec in table.to_dict("records"):
        scope = decisions[decisions.scope == rec["scope"]]
        if rec["scope"] in ("cell", "joint_time"):
            scope = scope[np.isclose(scope.time, rec["time"])]
        if rec["scope"] == "cell":
            scope = scope[scope.outcome == rec["outcome"]]
        assert len(scope) == 1, rec["quantity"]
        row = scope.iloc[0]
        # the same draws, so the same numbers (exactly, up to float summation)
        assert rec["mean"] == pytest.approx(row[rec["event"]], abs=1e-12), rec["quantity"]
        assert rec["mcse_mean"] == pytest.approx(row[f"mcse_{rec['event']}"], abs=1e-12, nan_ok=True), rec["quantity"]
        if rec["constant"]:
            assert np.isnan(rec["r_hat"]) and np.isnan(rec["mcse_mean"])
        else:
            assert np.isfinite(rec["r_hat"]) and rec["ess_bulk"] > 0
    # diagnose lists them (reads only the run folder)
    result = runner.invoke(app, ["diagnose", str(run_folder), "--all"])
    assert result.exit_code == 0, result.output
    assert "prob_equivalence[week 4, ODI]" in result.output
    assert "prob_not_equivalent[any cell]" in result.output
    assert "thresholds: fail: R-hat > 1.01" in result.output


# ---------------------------------------------------------------------------------------------
# the real-browser check
# ---------------------------------------------------------------------------------------------


def _chromium() -> str:
    path = os.environ.get("BAYES_STENOSIS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.skip(f"Chromium not installed ({path} missing; Debian: apt-get install chromium; .ci/run installs it)")
    return path


#: The layout a reader sees: the page's width, every element outside a scroll box that sticks out of
#: it, scroll boxes wider than the text column, and where the headline table is.
LAYOUT_JS = """() => {
  const width = document.documentElement.clientWidth;
  const column = document.body.getBoundingClientRect();
  const outside = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('.scroll') && !el.classList.contains('scroll')) continue;
    if (el.closest('details:not([open])')) continue;
    const r = el.getBoundingClientRect();
    if (r.right > width + 1 || r.left < -1) outside.push(el.tagName + '.' + el.className + ' ' + Math.round(r.right));
  }
  const boxes = Array.from(document.querySelectorAll('.scroll')).filter(
    e => e.getBoundingClientRect().right > column.right + 1);
  // a table wider than its scroll box makes the reader scroll sideways through it: split it instead
  const wide_tables = Array.from(document.querySelectorAll('.scroll > table')).filter(
    t => t.scrollWidth > t.parentElement.clientWidth + 1).map(
    t => (t.tHead ? t.tHead.textContent : '').trim().slice(0, 60) + ' ' + t.scrollWidth);
  const headline = document.querySelector('table.headline');
  const h = headline ? headline.getBoundingClientRect() : null;
  return {width, scroll_width: document.documentElement.scrollWidth, outside,
          boxes_wider_than_column: boxes.length, wide_tables,
          headline: h ? {top: h.top, bottom: h.bottom, rows: headline.tBodies[0].rows.length} : null};
}"""


def render_in_chromium(page_path: Path, screenshot: Path) -> dict:
    """Open ``page_path`` in headless Chromium at 1280 x 900; return images' natural widths, console
    errors, failed and non-local requests and the layout (:data:`LAYOUT_JS`), and write a screenshot of
    the first screen (``screenshot``) and of the full page (``*_full.png``)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (test extra) not installed")
    executable = _chromium()
    errors: list[str] = []
    requests: list[str] = []
    failed: list[str] = []
    with sync_api.sync_playwright() as pw:
        try:
            context = pw.chromium.launch_persistent_context(
                tempfile.mkdtemp(prefix="chromium-profile-"),  # a fresh user-data dir
                executable_path=executable,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 900},
            )
        except sync_api.Error as exc:
            pytest.skip(f"Chromium at {executable} cannot be launched here: {str(exc).splitlines()[0]}")
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            images = page.evaluate(
                "() => Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth}))"
            )
            title = page.title()
            layout = page.evaluate(LAYOUT_JS)
            page.screenshot(path=str(screenshot))
            page.screenshot(path=str(screenshot.with_name(screenshot.stem + "_full.png")), full_page=True)
        finally:
            context.close()
    return {
        "images": images,
        "errors": errors,
        "requests": requests,
        "failed": failed,
        "title": title,
        "layout": layout,
    }


def assert_reads_well(seen: dict, page_path: Path, n_plots: int) -> None:
    """What a reviewer at 1280 x 900 needs: every image decoded, no console error or request, nothing
    wider than the page, and the answer (the headline table) whole in the first screen."""
    assert len(seen["images"]) == n_plots > 0
    undecoded = [i["alt"] for i in seen["images"] if not (i["complete"] and i["w"] > 0)]
    assert not undecoded, undecoded
    # alt text says what the figure shows, not its file name
    assert all(len(i["alt"]) > 30 and not i["alt"].endswith(".png") for i in seen["images"]), seen["images"]
    assert seen["errors"] == [], seen["errors"]
    assert seen["failed"] == [], seen["failed"]
    # the page itself is the only request: images are data URIs, nothing is fetched
    assert [u for u in seen["requests"] if not u.startswith("data:")] == [page_path.as_uri()]
    layout = seen["layout"]
    assert layout["scroll_width"] <= layout["width"], layout
    assert layout["outside"] == [] and layout["boxes_wider_than_column"] == 0, layout
    assert layout["wide_tables"] == [], layout["wide_tables"]
    headline = layout["headline"]
    assert headline is not None and headline["rows"] > 0
    assert headline["top"] >= 0 and headline["bottom"] <= 900, headline


def test_synthetic_report_reads_well_in_chromium(run_copy, tmp_path):
    from bayes_stenosis.outputs import render_report

    page = render_report(run_copy, tmp_path / "report.html")
    shot = tmp_path / "first_screen.png"
    seen = render_in_chromium(page, shot)
    assert_reads_well(seen, page, len(list((run_copy / "plots").glob("*.png"))))
    assert shot.stat().st_size > 20_000


@pytest.mark.slow
def test_report_opens_in_chromium_with_every_image_decoded(run_folder, tmp_path):
    shot = tmp_path / "report.png"
    seen = render_in_chromium(run_folder / "report.html", shot)
    assert_reads_well(seen, run_folder / "report.html", len(list((run_folder / "plots").glob("*.png"))))
    assert "test_study" in seen["title"]
    assert shot.with_name("report_full.png").stat().st_size > 50_000  # a full page was drawn
