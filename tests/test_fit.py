"""The fit pipeline end to end: run folders, reproducibility, refusals, the flagship."""

from __future__ import annotations

import json

import arviz as az
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_stenosis import decisions
from bayes_stenosis.cli import app
from bayes_stenosis.testing import write_study
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
        "trace_treatment_difference.png",
        "rank_treatment_difference.png",
    ):
        assert (folder / "plots" / plot).stat().st_size > 10_000, plot


@pytest.mark.slow
def test_same_seed_same_draws_with_a_cold_and_a_warm_compile_cache(tmp_path):
    """A threshold study of the flagship's kind (two outcomes, two times, between- and within-arm
    statements: every operation of the flagship's graph) fitted twice in fresh processes sharing one new
    pytensor cache and one new compile cache: the first compiles from nothing, the second loads the
    compiled model from disk (the manifest says so). The draws must be identical. (With numba's
    fastmath on they were not: the two runs' posteriors differed from the first draw.) A smaller graph
    than the flagship's four outcomes, so a cheaper cold compile."""
    import os
    import subprocess
    import sys

    outcomes = {
        "ODI": {"instrument": "ODI", "scale_max": 100, "margin": 10, "reference_sd": 16},
        "RMDQ": {"instrument": "RMDQ", "scale_max": 24, "margin": 5, "reference_sd": 5},
    }
    statements = [
        {"outcome": o, "time": t, "comparison": "between", "relation": ">", "alpha": 0.05, "test": "two_sample_t"}
        for o in outcomes
        for t in (4, 8)
    ] + [
        {
            "outcome": o,
            "time": t,
            "comparison": "within",
            "arm": arm,
            "relation": "<",
            "alpha": 0.05,
            "direction": "improvement",
            "test": "paired_t",
        }
        for o in outcomes
        for t in (4, 8)
        for arm in ("reference_arm", "new_arm")
    ]
    study = write_study(
        tmp_path / "study", outcomes=outcomes, follow_up=(4.0, 8.0), rows={"thresholds.csv": statements}
    )

    flags = [os.environ.get("PYTENSOR_FLAGS", ""), f"base_compiledir={tmp_path / 'pytensor'}"]
    env = {
        **os.environ,
        "PYTENSOR_FLAGS": ",".join(f for f in flags if f),
        "BAYES_STENOSIS_COMPILE_CACHE": str(tmp_path / "compiled"),
    }
    posteriors, served = [], []
    for run in ("cold", "warm"):
        command = [sys.executable, "-m", "bayes_stenosis.cli", "fit", str(study), "--chains", "2"]
        command += ["--draws", "200", "--tune", "200", "--no-plots", "--no-report", "--no-progress"]
        command += ["--out", str(tmp_path / run)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, done.stderr[-2000:]
        (nc,) = (tmp_path / run).rglob("posterior.nc")
        posteriors.append(az.from_netcdf(str(nc)).posterior)
        served.append(json.loads((nc.parent / "manifest.json").read_text())["sampler"]["compile_cache"])
    assert served == ["miss", "hit"]
    np.testing.assert_array_equal(posteriors[0]["Delta"].values, posteriors[1]["Delta"].values)
