"""``workflow.fit``, what ``bayes-stenosis fit`` does, end to end: run folders, reproducibility, refusals,
the flagship, and the reproduction and missing-value table it writes beside the fit."""

from __future__ import annotations

import json

import arviz as az
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_stenosis import decisions
from bayes_stenosis import simulation as sim
from bayes_stenosis.cli import app
from bayes_stenosis.testing import ipd_truth, write_ipd_study, write_study
from bayes_stenosis.workflow import fit

runner = CliRunner()


def _contrast_study(tmp_path):
    return write_study(
        tmp_path / "study",
        follow_up=(4.0, 8.0),
        rows={
            "contrasts.csv": [
                {
                    "outcome": "ODI",
                    "time": 4,
                    "measure": "change",
                    "direction": "new_minus_reference",
                    "estimate": -2,
                    "se": 3,
                },
                {
                    "outcome": "ODI",
                    "time": 8,
                    "measure": "change",
                    "direction": "new_minus_reference",
                    "estimate": 1,
                    "ci_low": -5,
                    "ci_high": 7,
                    "ci_level": 0.95,
                },
            ]
        },
    )


def test_existing_run_folder_is_refused_before_any_work(tmp_path):
    study = _contrast_study(tmp_path)
    run = tmp_path / "out" / "test_study" / "default-vague-seed1"
    run.mkdir(parents=True)
    (run / "keep.txt").write_text("not to be lost")
    result = runner.invoke(app, ["fit", str(study), "--prior", "vague", "--seed", "1", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "already exists" in result.output and "--overwrite" in result.output
    assert (run / "keep.txt").read_text() == "not to be lost"


def test_bad_margin_option_is_a_one_line_error(tmp_path):
    study = _contrast_study(tmp_path)
    result = runner.invoke(app, ["fit", str(study), "--margin", "ODI:8", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "--margin expects OUTCOME=VALUE" in result.output
    assert not (tmp_path / "o").exists()


def test_study_without_usable_evidence_is_refused(tmp_path):
    study = write_study(tmp_path / "empty")
    result = runner.invoke(app, ["fit", str(study), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "no usable evidence" in result.output


@pytest.mark.slow
def test_same_seed_same_numbers_and_complete_run_folder(tmp_path):
    study = _contrast_study(tmp_path)
    kwargs = {"prior_set": "vague", "chains": 2, "draws": 300, "tune": 300, "progress": False, "plots": False}
    first = fit(study, seed=11, out=tmp_path / "a", **kwargs)
    second = fit(study, seed=11, out=tmp_path / "b", **kwargs)
    third = fit(study, seed=12, out=tmp_path / "c", **kwargs)
    post = [az.from_netcdf(str(r.folder / "posterior.nc")).posterior for r in (first, second, third)]
    np.testing.assert_array_equal(post[0]["delta_natural"].values, post[1]["delta_natural"].values)
    assert not np.array_equal(post[0]["delta_natural"].values, post[2]["delta_natural"].values)
    folder = first.folder
    for name in (
        "posterior.nc",
        "diagnostics.csv",
        "diagnostics_sampler.csv",
        "evidence.csv",
        "contrasts.csv",
        "decisions.csv",
        "margin_curves.csv",
        "draws_contrasts.parquet",
        "draws_contrasts.csv",
        "approximations.json",
        "manifest.json",
    ):
        assert (folder / name).is_file(), name
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sampler"]["seed"] == 11 and manifest["prior_set"] == "vague"
    assert len(manifest["study"]["sha256"]) == 64 and len(manifest["spec"]["sha256"]) == 64
    assert manifest["interval"] == {"kind": "eti", "prob": 0.95}
    idata = az.from_netcdf(str(folder / "posterior.nc"))
    for group in (
        "posterior",
        "prior",
        "posterior_predictive",
        "log_likelihood",
        "sample_stats",
        "observed_data",
    ):
        assert group in idata.groups(), group
    # parquet and csv draws hold the same numbers as the posterior
    draws = pd.read_parquet(folder / "draws_contrasts.parquet")
    assert len(draws) == 2 * 300 * 2
    np.testing.assert_allclose(
        np.sort(draws.loc[draws.time == 4.0, "delta_natural"].to_numpy()),
        np.sort(post[0]["delta_natural"].sel(time=4.0, outcome="ODI").values.ravel()),
    )
    decisions.validate_approximation(json.loads((folder / "approximations.json").read_text()))
    # no temporary folders left behind
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]
    # export round trip: what meta-analysts get back equals the run's numbers
    for fmt, name in (("parquet", "x.parquet"), ("csv", "x.csv"), ("json", "x.json"), ("netcdf", "x.nc")):
        result = runner.invoke(app, ["export", str(folder), "--format", fmt, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "x.parquet"), draws)
    np.testing.assert_allclose(pd.read_csv(tmp_path / "x.csv")["delta_natural"], draws["delta_natural"])
    exported = json.loads((tmp_path / "x.json").read_text())
    decisions.validate_approximation(exported)
    np.testing.assert_array_equal(
        az.from_netcdf(str(tmp_path / "x.nc")).posterior["delta_natural"].values, post[0]["delta_natural"].values
    )
    # refusals: an existing file, and a folder that is not a run
    again = runner.invoke(app, ["export", str(folder), "--format", "csv", "--out", str(tmp_path / "x.csv")])
    assert again.exit_code == 2 and "already exists" in again.output  # the one wording of every command (issue 23)
    bad = runner.invoke(app, ["summarize", str(tmp_path)])
    assert bad.exit_code == 2 and "not a complete run folder" in bad.output
    summary = runner.invoke(app, ["summarize", str(folder)])
    assert summary.exit_code == 0 and "ODI" in summary.output and "rule:" in summary.output


@pytest.mark.slow
def test_flagship_default_fit_through_the_cli(tmp_path):
    result = runner.invoke(app, ["fit", "--out", str(tmp_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "farpour2022" / "default-weakly_informative-seed20221149"
    # every phase over ~2 s has its line, sampling included (no sampler bar here); the compile has none when
    # this test process already holds the flagship's compiled model (another test fitted it first: instant)
    phases = ["sampling (nutpie, 4 chains x 1500 draws", "drawing the plots"]
    if json.loads((folder / "manifest.json").read_text())["sampler"]["compile_cache"] != "in-process":
        phases.append("compiling the model")
    for phase in phases:
        assert phase in result.output, phase
    # the sweep is planned, not run: its fits for the report's sensitivity section
    assert json.loads((folder / "sensitivity_plan.json").read_text())["n_fits"] == 53
    assert f"--out {tmp_path}` refits the model 53 times, about" in " ".join(result.output.split())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["diagnostics_verdict"]["status"] == "ok", manifest["diagnostics_verdict"]
    table = pd.read_csv(folder / "decisions.csv")
    cells = table[table.scope == "cell"]
    assert len(cells) == 8 and set(cells.evidence) == {"threshold"}
    assert {
        "prob_equivalence",
        "prob_equivalence_prior",
        "prob_noninferiority",
        "decision",
        "margin",
    } <= set(table.columns)
    diag = pd.read_csv(folder / "diagnostics.csv")
    reported = diag[diag.quantity.str.startswith("delta")]
    assert (reported.r_hat <= 1.01).all() and (reported.ess_bulk >= 400).all() and (reported.ess_tail >= 400).all()
    for plot in (
        "forest.png",
        "margin_curves.png",
        "prior_posterior.png",
        "posterior_margin.png",
        "trace_treatment_difference.png",
        "rank_treatment_difference.png",
    ):
        assert (folder / "plots" / plot).stat().st_size > 10_000, plot


@pytest.mark.slow
def test_fit_writes_reproduce_csv_into_the_run_folder(tmp_path):
    from bayes_stenosis.workflow import fit

    rec = {
        "outcome": "ODI",
        "time": 4,
        "measure": "change",
        "direction": "new_minus_reference",
        "estimate": -2,
        "se": 3,
    }
    study = write_study(tmp_path / "s", rows={"contrasts.csv": [rec]})
    run = fit(
        study, prior_set="vague", chains=2, draws=100, tune=100, seed=3, out=tmp_path / "o", progress=False, plots=False
    )
    table = pd.read_csv(run.folder / "reproduce.csv")
    assert table.iloc[0]["se"] == pytest.approx(3.0)


# Patient-level data: simulated with a very wide scale range so no score is clipped.
@pytest.mark.slow
def test_fit_reports_missing_values(tmp_path):
    """``fit`` on an IPD study writes missing_ipd.csv (per arm x time x outcome) and the manifest line,
    keeps per-cell predictive summaries (not per-patient replicates) and draws the check from them."""
    import json

    import arviz as az

    from bayes_stenosis.workflow import fit

    folder = write_ipd_study(tmp_path / "f", ipd_truth(n=15, dropout=0.2), seed=8)
    result = fit(folder, seed=1, chains=2, draws=200, tune=200, out=tmp_path / "out", progress=False, plots=True)
    idata = az.from_netcdf(str(result.folder / "posterior.nc"))
    for group in ("prior_predictive", "posterior_predictive"):
        names = set(idata[group].data_vars)
        assert {"ipd_cell_mean", "ipd_cell_sd"} <= names and not any(n.startswith("obs_ipd") for n in names)
        assert idata[group]["ipd_cell_mean"].sizes == {
            "chain": idata[group].sizes["chain"],
            "draw": idata[group].sizes["draw"],
            "arm": 2,
            "ipd_visit": 3,
            "ipd_outcome": 2,
        }
    # the observed cell means lie inside the replicates' central 99.9 % interval: for a correct model a
    # cell misses with probability <= 0.001 (posterior predictive p-values concentrate near 1/2), so at
    # most one miss in 12 cells is allowed
    rep = idata.posterior_predictive["ipd_cell_mean"].stack(s=("chain", "draw"))
    lo, hi = rep.quantile(0.0005, "s"), rep.quantile(0.9995, "s")
    obs = idata.observed_data["ipd_cell_mean"]
    assert int(((obs < lo) | (obs > hi)).sum()) <= 1
    assert (result.folder / "plots" / "ppc.png").is_file()
    labels = pd.read_csv(result.folder / "observed_quantities.csv")
    assert (labels.variable == "ipd_cell_mean").sum() == 12
    table = pd.read_csv(result.folder / "missing_ipd.csv")
    patients = sim.simulate_patients(ipd_truth(n=15, dropout=0.2), seed=8)
    follow = patients[patients.time > 0]
    assert table["missing"].sum() == follow.value.isna().sum() > 0
    manifest = json.loads((result.folder / "manifest.json").read_text())
    assert manifest["ipd_missing"].startswith("missing IPD follow-up values")
    evidence = pd.read_csv(result.folder / "evidence.csv")
    assert (evidence.evidence == "ipd").all()
