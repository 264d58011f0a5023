"""Synthesis over saved runs (``analyses/synthesis/inputs.py``, ``combine.py``, ``writing.py``): each run's
likelihood is read (never its posterior), the refusals, the scale, and the published folder.

The runs are synthetic (``synthesis_runs`` in tests/conftest.py): normal posterior draws under the vague
N(0, 10) prior, so the likelihood division is exact up to Monte Carlo error.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from bayes_stenosis.analyses.synthesis import (
    cell_prior_logpdf,
    read_study,
    run_synthesis,
    synthesize,
    synthesize_studies,
)
from bayes_stenosis.errors import OutputPathError, SynthesisError
from bayes_stenosis.run import load_run, read_manifest, sha256_file
from bayes_stenosis.run.integrity import verify_folder


def test_a_run_enters_through_its_likelihood_with_the_prior_divided_out(synthesis_runs):
    study = read_study(synthesis_runs["a"], "VAS", 4, mode="normal")
    draws = pd.read_parquet(synthesis_runs["a"] / "draws_contrasts.parquet")
    x = draws.loc[draws["outcome"] == "VAS", "delta_std"].to_numpy()
    post_prec, prior_prec = 1 / x.var(ddof=1), 1 / 10.0**2
    var = 1 / (post_prec - prior_prec)
    assert study.method == "normal"
    assert study.likelihood_std.mean == pytest.approx(var * post_prec * x.mean(), rel=1e-9)
    assert study.likelihood_std.sd == pytest.approx(np.sqrt(var), rel=1e-9)
    assert study.hashes["manifest_sha256"] == sha256_file(synthesis_runs["a"] / "manifest.json")


def test_reweighted_draws_agree_with_the_exact_normal_division_within_mcse(synthesis_runs):
    normal = read_study(synthesis_runs["a"], "VAS", 4, mode="normal")
    drawn = read_study(synthesis_runs["a"], "VAS", 4, mode="reweighted")
    mcse = normal.likelihood_std.sd / np.sqrt(drawn.effective_draws)
    assert drawn.method == "reweighted_draws"
    assert abs(drawn.likelihood_std.mean - normal.likelihood_std.mean) < 4 * mcse
    assert abs(drawn.likelihood_std.sd - normal.likelihood_std.sd) < 4 * mcse / np.sqrt(2)


def test_natural_and_standardized_syntheses_agree_when_units_match(synthesis_runs):
    runs = [synthesis_runs["a"], synthesis_runs["b"]]
    natural = synthesize(runs, "VAS", 4, likelihood="normal", scale="auto")
    std = synthesize(runs, "VAS", 4, likelihood="normal", scale="standardized")
    assert natural.scale == "natural" and natural.unit == "mm" and natural.margin == 15
    assert std.margin == pytest.approx(0.75)
    assert natural.numbers["pooled"]["mean"] == pytest.approx(20 * std.numbers["pooled"]["mean"], rel=1e-6)
    for key in ("pooled", "new_study"):
        assert natural.numbers[key]["prob_equivalence"] == pytest.approx(std.numbers[key]["prob_equivalence"], abs=1e-6)


def test_different_units_are_combined_only_on_the_standardized_scale(synthesis_runs):
    runs = [synthesis_runs["a"], synthesis_runs["cm"]]
    result = synthesize(runs, "VAS", 4, likelihood="normal")
    assert result.scale.startswith("standardized") and result.unit == "SD units"
    assert any("STANDARDIZED" in note for note in result.notes)
    assert "standardized" in result.table()["scale"].iloc[0]
    with pytest.raises(SynthesisError, match="--scale natural needs one unit"):
        synthesize(runs, "VAS", 4, likelihood="normal", scale="natural")


def test_different_comparisons_are_refused_unless_the_arms_are_mapped(synthesis_runs):
    runs = [synthesis_runs["a"], synthesis_runs["other_arms"]]
    with pytest.raises(SynthesisError, match="different comparisons.*calcitonin vs placebo.*--arm-map"):
        synthesize(runs, "VAS", 4, likelihood="normal")
    mapped = synthesize(
        runs, "VAS", 4, likelihood="normal", arm_map={"calcitonin": "new_arm", "placebo": "reference_arm"}
    )
    assert len(mapped.studies) == 2


def test_opposite_outcome_directions_are_refused(synthesis_runs):
    a = read_study(synthesis_runs["a"], "VAS", 4, mode="normal")
    b = dataclasses.replace(read_study(synthesis_runs["b"], "VAS", 4, mode="normal"), direction="higher_is_better")
    with pytest.raises(SynthesisError, match="outcome directions differ.*does not flip signs"):
        synthesize_studies([a, b])


def test_margins_that_differ_need_an_explicit_margin(synthesis_runs):
    runs = [synthesis_runs["a"], synthesis_runs["narrow_margin"]]
    with pytest.raises(SynthesisError, match="margins differ.*give --margin"):
        synthesize(runs, "VAS", 4, likelihood="normal")
    result = synthesize(runs, "VAS", 4, likelihood="normal", margin=12.0)
    assert result.margin == 12.0 and "--margin" in result.margin_source


@pytest.mark.parametrize(
    ("cell", "message"),
    [(("ODI", 4), "has no evidence"), (("VAS", 8), "no contrast for outcome 'VAS' at time 8")],
)
def test_a_cell_without_a_likelihood_is_refused(synthesis_runs, cell, message):
    with pytest.raises(SynthesisError, match=message):
        read_study(synthesis_runs["a"], *cell)


def test_the_same_study_twice_is_refused(synthesis_runs):
    with pytest.raises(SynthesisError, match="more than once"):
        synthesize([synthesis_runs["a"], synthesis_runs["a"]], "VAS", 4, likelihood="normal")


def test_a_posterior_is_never_pooled_as_a_likelihood(synthesis_runs, tmp_path):
    """Double counting guarded: a run without a likelihood approximation is refused under --likelihood
    normal (its posterior includes its prior), and a synthesis folder (a posterior) is refused as input."""
    with pytest.raises(SynthesisError, match="no likelihood approximation.*cannot be pooled"):
        read_study(synthesis_runs["no_likelihood"], "VAS", 4, mode="normal")
    folder = run_synthesis([synthesis_runs["a"], synthesis_runs["b"]], tmp_path / "syn", outcome="VAS", time=4).folder
    with pytest.raises(SynthesisError, match="its pooled result is a POSTERIOR"):
        synthesize([folder, synthesis_runs["a"]], "VAS", 4)


def test_the_synthesis_folder_is_published_with_the_inputs_hashes(synthesis_runs, tmp_path):
    runs = [synthesis_runs["a"], synthesis_runs["b"]]
    out = tmp_path / "syn"
    result = run_synthesis(runs, out, outcome="VAS", time=4, likelihood="normal")
    assert result.folder == out
    manifest = read_manifest(out)
    assert manifest["kind"] == "synthesis"
    assert verify_folder(out, manifest) == []
    assert set(manifest["output_files"]) == {
        "synthesis.json",
        "synthesis.csv",
        "forest.png",
        "report.md",
        "posterior.nc",
        "diagnostics.csv",
    }
    draws = load_run(out).idata.posterior  # a run folder like any other, read through the checked reader
    assert abs(float(draws["mu"].mean()) - result.synthesis.numbers["pooled"]["mean"]) < 4 * float(
        draws["mu"].std() / np.sqrt(draws["mu"].size)
    )
    for entry, run in zip(manifest["inputs"], runs, strict=True):
        assert entry["manifest_sha256"] == sha256_file(run / "manifest.json")
        assert entry["approximations_sha256"] == sha256_file(run / "approximations.json")
    record = json.loads((out / "synthesis.json").read_text())
    assert record["priors"]["tau"]["name"] == "bartos2021_back_and_neck" and "doi" in record["priors"]["tau"]["source"]
    assert record["margin"]["value"] == 15 and record["margin"]["source"]
    assert record["likelihood_choice"]["mode"] == "normal" and record["likelihood_choice"]["max_ks_distance"] == 0.05
    table = pd.read_csv(out / "synthesis.csv")
    assert list(table["row"]) == ["study", "study", "pooled", "new_study", "tau"]
    assert "P(|pooled effect|" in (out / "report.md").read_text()
    before = (out / "synthesis.json").read_bytes()
    with pytest.raises(OutputPathError):
        run_synthesis(runs, out, outcome="VAS", time=4)
    assert (out / "synthesis.json").read_bytes() == before


@pytest.mark.parametrize("family", ["normal", "student_t"])
def test_the_marginal_prior_divided_out_matches_draws_of_the_pooled_prior(family):
    """delta = Delta + tau z, tau ~ HalfNormal(0.15), with two outcomes: the quadrature density's mass in
    (-0.3, 0.3) and (0.6, inf) equals the share of 200,000 forward draws within 4 binomial SEs."""
    prior = {"family": family, "nu": 5.0, "mu": 0.0, "sigma": 0.37, "outcome_pooling": "partial", "tau_scale": 0.15}
    rng = np.random.default_rng(7)
    n = 200_000
    base = rng.standard_t(5, n) if family == "student_t" else rng.standard_normal(n)
    x = 0.37 * base + np.abs(rng.normal(0, 0.15, n)) * rng.standard_normal(n)

    def density(v):
        return float(np.exp(cell_prior_logpdf(prior, 2, np.array([v]))[0]))

    for lo, hi, share in ((-0.3, 0.3, np.mean(np.abs(x) < 0.3)), (0.6, 20.0, np.mean(x > 0.6))):
        mass = integrate.quad(density, lo, hi, limit=200)[0]
        assert abs(mass - share) < 4 * np.sqrt(share * (1 - share) / n), (lo, hi, mass, share)
    # one outcome: no tau, the prior set's own density
    one = cell_prior_logpdf(prior, 1, np.array([0.2]))[0]
    expected = stats.t(5, 0, 0.37).logpdf(0.2) if family == "student_t" else stats.norm(0, 0.37).logpdf(0.2)
    assert one == pytest.approx(expected)
