"""The meta-analysis hand-off of a run folder: ``approximations.json`` says it is the posterior and names
its prior, SDs, direction, seed and spec; the likelihood approximation divides the prior out (exact for a
conjugate normal case: a real fit of one reported contrast under a normal prior); the draws carry
R ``posterior``'s 1-based ``.chain/.iteration/.draw`` and their metadata."""

from __future__ import annotations

import json

import arviz as az
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import stats

from bayes_stenosis import decisions as dec
from bayes_stenosis.run import fit_study, load_run
from bayes_stenosis.testing import write_study

Z = 4.0


def test_approximations_json_says_what_it_approximates(pristine_run):
    run = load_run(pristine_run)
    approx = run.read_json("approximations.json")
    manifest = run.manifest
    dec.validate_approximation(approx)
    assert approx["approximates"] == "posterior" and approx["description"].startswith("POSTERIOR (includes the prior)")
    assert approx["prior"]["set"] == manifest["prior_set"] == "vague"
    assert approx["prior"]["text"] == manifest["prior_on_Delta"]["text"]
    sds = {r["outcome"]: r for r in approx["standardising_sds"]}
    assert {o: r["sd"] for o, r in sds.items()} == {o: v["value"] for o, v in manifest["scale"].items()}
    assert sds["ODI"]["source"].startswith("reference_sd: TEST FIXTURE")
    assert approx["direction"] == ["lower_is_better"] * 4 and approx["time_unit"] == "weeks"
    meta = approx["metadata"]
    assert meta["seed"] == manifest["sampler"]["seed"] and meta["spec_sha256"] == manifest["spec"]["sha256"]
    # the correlation matrix is the covariance's
    cov = np.array(approx["covariance_natural"])
    np.testing.assert_allclose(approx["correlation"], cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov))), atol=1e-12)
    # the likelihood: vague N(0, 10) prior per cell (exact normal), divided out on the standardized scale
    lik = approx["likelihood"]
    assert lik["status"] == "ok" and lik["prior_normal"]["exact"] is True
    assert lik["names"] == approx["names"]  # every cell has evidence
    prior_precision = np.eye(4) / 100.0
    post_precision = np.linalg.inv(np.array(approx["covariance_std"]))
    np.testing.assert_allclose(np.linalg.inv(lik["covariance_std"]), post_precision - prior_precision, rtol=1e-8)


def test_draws_have_posterior_package_indices_and_metadata(pristine_run):
    run = load_run(pristine_run)
    draws = pd.read_parquet(run.file("draws_contrasts.parquet"))
    chains, per_chain = run.manifest["sampler"]["chains"], run.manifest["sampler"]["draws"]
    assert list(draws.columns[:3]) == [".chain", ".iteration", ".draw"]
    assert sorted(draws[".chain"].unique()) == list(range(1, chains + 1))
    assert draws[".iteration"].min() == 1 and draws[".iteration"].max() == per_chain
    assert sorted(draws[".draw"].unique()) == list(range(1, chains * per_chain + 1))
    assert (draws[".draw"] == (draws[".chain"] - 1) * per_chain + draws[".iteration"]).all()
    # the same numbers as the posterior, cell by cell, in .chain/.iteration order
    idata = run.idata
    cell = draws[(draws.time == 8.0) & (draws.outcome == "VAS")].sort_values([".chain", ".iteration"])
    np.testing.assert_array_equal(
        cell["delta_natural"].to_numpy(), idata.posterior["delta_natural"].sel(time=8.0, outcome="VAS").values.ravel()
    )
    assert set(cell["unit"]) == {"points"} and set(cell["direction"]) == {"lower_is_better"}
    meta = json.loads(pq.read_schema(run.file("draws_contrasts.parquet")).metadata[b"bayes_stenosis"])
    assert meta["study"] == "test_study" and meta["prior"]["set"] == "vague" and meta["time_unit"] == "weeks"
    assert meta["units"] == {"ODI": "points", "VAS": "points"} and meta["direction"]["ODI"] == "lower_is_better"
    assert meta["seed"] == run.manifest["sampler"]["seed"] and "include the prior" in meta["what"]
    # the CSV's sidecar is part of the run (checksummed) and describes every column
    sidecar = run.read_json("draws_contrasts.csv-metadata.json")
    assert sidecar["url"] == "draws_contrasts.csv" and sidecar["bayes_stenosis"] == meta
    csv = pd.read_csv(run.file("draws_contrasts.csv"))
    assert [c["titles"] for c in sidecar["tableSchema"]["columns"]] == list(csv.columns)
    assert "draws_contrasts.csv-metadata.json" in run.checksums


@pytest.mark.slow
def test_likelihood_of_one_contrast_under_a_normal_prior_is_the_contrast(tmp_path):
    """Conjugate case: one outcome, one time, a reported difference -2 (SE 3) and the normal
    small_difference prior on Delta (one outcome: delta = Delta, no tau). The posterior is exactly
    normal; dividing the prior out must give back the estimate and its SE, within Monte Carlo error."""
    estimate, se = -2.0, 3.0
    study = write_study(
        tmp_path / "study",
        rows={
            "contrasts.csv": [
                {
                    "outcome": "ODI",
                    "time": 4,
                    "measure": "change",
                    "direction": "new_minus_reference",
                    "estimate": estimate,
                    "se": se,
                }
            ]
        },
    )
    fit = fit_study(study, prior_set="small_difference", seed=3, chains=4, draws=2000, tune=1000)
    lik = fit.results.approximation["likelihood"]
    assert lik["status"] == "ok" and lik["exact"] is True, lik
    # the prior divided out is the resolved prior: N(0, sigma) standardized, sigma = (10 / 16) / z_0.975
    sigma = fit.prior.sigma
    assert sigma == pytest.approx(10 / 16 / stats.norm.ppf(0.975))
    assert lik["prior_normal"]["covariance_std"] == [[pytest.approx(sigma**2)]]
    # Monte Carlo error of the division, by the delta method with the posterior's ESS
    x = fit.idata.posterior["delta_natural"].sel(time=4.0, outcome="ODI")
    ess = float(az.ess(x.to_dataset(name="x"))["x"])
    m1, v1 = float(x.mean()), float(x.var())
    v0 = (sigma * 16) ** 2  # the prior in natural units
    lik_var = 1 / (1 / v1 - 1 / v0)
    # m_lik = m1 / (1 - v1 / v0): d/dm1 = lik_var / v1, d/dv1 = m1 / v0 / (1 - v1 / v0)^2;
    # lik_var = 1 / (1 / v1 - 1 / v0): d/dv1 = lik_var^2 / v1^2; Var(m1) = v1 / ESS, Var(v1) = 2 v1^2 / ESS
    d_mean, d_var = lik_var / v1, m1 / v0 / (1 - v1 / v0) ** 2
    se_mean = np.sqrt(d_mean**2 * v1 / ess + d_var**2 * 2 * v1**2 / ess)
    se_var = lik_var**2 / v1**2 * v1 * np.sqrt(2 / ess)
    assert abs(lik["mean_natural"][0] - estimate) < Z * se_mean, (lik["mean_natural"], se_mean)
    assert abs(lik["se_natural"][0] ** 2 - se**2) < Z * se_var, (lik["se_natural"], se_var)
