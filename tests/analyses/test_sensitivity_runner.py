"""``analyses.sensitivity.runner``: an existing sweep folder refused before any sampling; (slow) real sweeps
on cheap simulated studies: closed-form posteriors after hyperparameter swaps, swapped fits identical to
freshly compiled ones."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from bayes_stenosis.analyses import FitConfig
from bayes_stenosis.analyses.sensitivity import COLUMNS
from bayes_stenosis.cli import app
from bayes_stenosis.spec import load_spec
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import write_spec_with_grid, write_study

runner = CliRunner()


def test_existing_folder_is_refused_before_any_sampling(tmp_path):
    folder = tmp_path / "farpour2022" / "sensitivity"
    folder.mkdir(parents=True)
    (folder / "keep.txt").write_text("not to be lost")
    result = runner.invoke(app, ["sensitivity", "farpour2022", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (folder / "keep.txt").read_text() == "not to be lost"


# ---------------------------------------------------------------------------------------------
# slow: real sweeps on cheap simulated studies
# ---------------------------------------------------------------------------------------------


SWEEP = {"chains": 2, "draws": 1000, "tune": 500}


def _normal_posterior_prob(prior_mu, prior_sd, estimate, se, margin):
    var = 1 / (1 / prior_sd**2 + 1 / se**2)
    mean = var * (prior_mu / prior_sd**2 + estimate / se**2)
    sd = np.sqrt(var)
    return stats.norm.cdf((margin - mean) / sd) - stats.norm.cdf((-margin - mean) / sd)


@pytest.mark.slow
def test_swept_priors_match_the_conjugate_normal_answer_for_every_margin_set(tmp_path):
    """One contrast, one cell: delta_natural = s * Delta, Delta ~ N(mu0, sigma0) (small_difference,
    enthusiastic and vague are normal: one compile, hyperparameters swapped), the estimate ~ N(delta,
    SE): P(|delta| < m) is a normal CDF difference. Correlation assumptions cannot matter here and must
    collapse to one fit."""
    from bayes_stenosis.analyses import run_sensitivity
    from bayes_stenosis.model import prepare_inputs, resolve_prior

    est, se = -3.0, 4.0
    rec = {
        "outcome": "ODI",
        "time": 4,
        "measure": "change",
        "direction": "new_minus_reference",
        "estimate": est,
        "se": se,
    }
    folder = write_study(tmp_path / "study", rows={"contrasts.csv": [rec]})
    spec_path = write_spec_with_grid(tmp_path, ["small_difference", "enthusiastic", "vague"], ["uncertain", 0.5])
    res = run_sensitivity(folder, spec=spec_path, seed=5, out=tmp_path / "out", **SWEEP)
    manifest = json.loads((res.folder / "manifest.json").read_text())
    assert manifest["n_fits"] == 3 and manifest["structures_compiled"] == 1
    assert list(pd.read_csv(res.folder / "sensitivity.csv").columns) == list(COLUMNS)
    assert (res.folder / "sensitivity.png").is_file()
    spec, _ = load_spec(spec_path)
    inputs = prepare_inputs(load_study(folder), spec)
    scale = float(inputs.scale[0])
    cells = res.table[res.table.scope == "cell"]
    assert len(cells) == 3 * 3  # 3 fits x 3 margin sets
    for rec in cells.to_dict("records"):
        prior = resolve_prior(spec, rec["prior_set"], inputs)
        truth = _normal_posterior_prob(scale * prior.mu, scale * prior.sigma, est, se, rec["margin"])
        assert abs(rec["prob_equivalence"] - truth) < 4 * np.nan_to_num(rec["mcse_prob_equivalence"]) + 0.005, rec
        prior_truth = _normal_posterior_prob(scale * prior.mu, scale * prior.sigma, 0.0, 1e9, rec["margin"])
        binomial_sd = np.sqrt(prior_truth * (1 - prior_truth) / 20000)  # prior_draws_decisions
        assert abs(rec["prob_equivalence_prior"] - prior_truth) < 4 * binomial_sd + 1e-3, rec
        assert rec["diagnostics_status"] in ("ok", "warning", "fail")
    # margins change only the decisions: the same draws under every margin set
    wide = cells.pivot_table(index="configuration", columns="margin_set", values="prob_equivalence")
    assert (wide["methods_lower"] <= wide["study"]).all() and (wide["study"] <= wide["methods_upper"]).all()


@pytest.mark.slow
def test_a_swapped_fixed_correlation_gives_the_draws_of_a_freshly_compiled_model(tmp_path):
    """With baseline and follow-up scores the change SD depends on rho: sweeping rho_fixed as data through
    one compiled model must give exactly what compiling the model for that rho gives (same seed)."""
    from bayes_stenosis.analyses.sensitivity import run_sensitivity
    from bayes_stenosis.model import prepare_inputs
    from bayes_stenosis.run import fit_study

    rows = []
    for arm, b, f in (("reference_arm", 45.0, 30.0), ("new_arm", 44.0, 37.0)):
        rows.append({"arm": arm, "outcome": "ODI", "time": 0, "kind": "score", "n": 30, "mean": b, "sd": 16})
        rows.append({"arm": arm, "outcome": "ODI", "time": 4, "kind": "score", "n": 30, "mean": f, "sd": 17})
    folder = write_study(tmp_path / "study", rows={"arm_summaries.csv": rows})
    spec_path = write_spec_with_grid(tmp_path, ["vague"], [0.2, 0.8])
    settings = {"chains": 2, "draws": 300, "tune": 300}
    res = run_sensitivity(folder, spec=spec_path, seed=9, out=tmp_path / "out", plots=False, **settings)
    assert res.manifest["structures_compiled"] == 1

    spec, _ = load_spec(spec_path)
    inputs = prepare_inputs(load_study(folder), spec)
    cfg = FitConfig("vague", 0.8)
    fresh = fit_study(folder, spec=cfg.spec(spec), prior_set="vague", seed=cfg.seed(9), **settings)
    idata = fresh.idata
    draws = idata.posterior["delta_natural"].values.ravel()
    margin = float(inputs.margins[0])
    swept = res.table[(res.table.configuration == cfg.label) & (res.table.scope == "cell")]
    swept = swept[swept.margin_set == "study"].iloc[0]
    assert swept["delta_mean_natural"] == pytest.approx(draws.mean(), rel=1e-12)
    assert swept["delta_sd_natural"] == pytest.approx(draws.std(ddof=1), rel=1e-12)
    assert swept["prob_equivalence"] == pytest.approx(float((abs(draws) < margin).mean()), abs=1e-12)
    # the sweep draws no prior group; its prior column is the decision table's own prior draws, as a fit's
    fresh_cell = fresh.decisions[fresh.decisions.scope == "cell"].iloc[0]
    assert swept["prob_equivalence_prior"] == fresh_cell["prob_equivalence_prior"]
    # and rho did change the fit: with rho 0.8 the change SD, and so the posterior spread, is smaller
    low = res.table[(res.table.configuration == FitConfig("vague", 0.2).label) & (res.table.scope == "cell")]
    assert low.iloc[0]["delta_sd_natural"] > 1.2 * swept["delta_sd_natural"]
