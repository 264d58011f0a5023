"""Sensitivity sweep: the grid schema, margin rescaling, closed-form posteriors after hyperparameter
swaps, swapped fits identical to freshly compiled ones, refusals before any sampling."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from bayes_stenosis.analyses import FitConfig, margin_sets, plot_sensitivity
from bayes_stenosis.analyses.sensitivity import COLUMNS
from bayes_stenosis.cli import app
from bayes_stenosis.errors import InputError
from bayes_stenosis.resources import resolve_spec
from bayes_stenosis.spec import load_spec
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import write_study

runner = CliRunner()


def _spec_with_grid(tmp_path, prior_sets, correlations, extra: str = "", pooling=("spec",)) -> str:
    """A copy of the default spec with another [sensitivity] grid (the grid is data, not code)."""
    text = resolve_spec("default").read_text()
    text = re.sub(r"(?m)^outcome_pooling = \[.*\]$", f"outcome_pooling = {json.dumps(list(pooling))}", text)
    text = re.sub(r"(?m)^prior_sets = \[.*\]$", f"prior_sets = {json.dumps(prior_sets)}", text)
    text = re.sub(r"(?m)^correlations = \[.*\]$", f"correlations = {json.dumps(correlations)}", text)
    text = text.replace("[sensitivity]\n", "[sensitivity]\n" + extra, 1)
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return str(path)


def test_default_grid_crosses_priors_with_correlations_and_with_pooling():
    from bayes_stenosis.analyses.sensitivity import grid

    spec, _ = load_spec("default")
    assert spec.sensitivity.prior_sets == [
        "weakly_informative",
        "small_difference",
        "sceptical_of_equivalence",
        "enthusiastic",
        "vague",
    ]
    assert spec.sensitivity.correlations == ["uncertain", 0.25, 0.5, 0.75]
    configs, reference = grid(spec, uses_rho=True)
    assert reference == FitConfig("weakly_informative", "uncertain")
    # 5 x 4 with the spec's pooling; then each prior set that pools (not vague: never pooled) x 2
    # alternative poolings at the reference correlation
    assert len(configs) == 20 + 4 * 2 and len({c.label for c in configs}) == len(configs)
    assert FitConfig("vague", "uncertain", "none") not in configs
    # a grid without the pooling axis keeps its labels, so its seeds
    assert FitConfig("vague", 0.25).label == "vague | rho fixed 0.25"
    wide = FitConfig("weakly_informative", "uncertain", 0.5).spec(spec).hierarchy
    assert (wide.outcome_pooling, wide.tau_scale) == ("partial", 0.5)
    assert FitConfig("enthusiastic", "uncertain", "none").spec(spec).hierarchy.outcome_pooling == "none"
    assert FitConfig("vague", 0.5).spec(spec).correlation.fixed_baseline_followup == 0.5


def test_threshold_axes_cross_every_prior_set_one_axis_at_a_time():
    """With threshold statements the grid adds, at the reference correlation and the spec's pooling, every
    prior set x every alternative test assumed (2), fixed follow-up / baseline SD ratio (2) and share
    analysed (1); each configuration's spec carries exactly its change."""
    from bayes_stenosis.analyses.sensitivity import grid

    spec, _ = load_spec("default")
    base, _ = grid(spec, uses_rho=True)
    configs, reference = grid(spec, uses_rho=True, uses_thresholds=True)
    assert configs[: len(base)] == base  # the earlier fits keep their labels and seeds
    extra = configs[len(base) :]
    assert len(extra) == 5 * (2 + 2 + 1) and len({c.label for c in configs}) == len(configs)
    assert all(c.correlation == reference.correlation and c.pooling == "spec" for c in extra)
    ancova = FitConfig("vague", "uncertain", between_test="ancova").spec(spec)
    assert ancova.thresholds.between_test == "ancova" and ancova.hierarchy == spec.hierarchy
    fixed = FitConfig("weakly_informative", "uncertain", followup_sd_ratio=1.6).spec(spec).scale
    assert (fixed.followup_sd_ratio_median, fixed.followup_sd_ratio_log_sd) == (1.6, 0.0)
    completers = FitConfig("weakly_informative", "uncertain", analysed_fraction=0.8).spec(spec)
    assert completers.thresholds.analysed_fraction == 0.8 and completers.scale == spec.scale
    assert FitConfig("enthusiastic", "uncertain", between_test="follow_up").label.endswith("| test follow_up")


@pytest.mark.parametrize(
    ("prior_sets", "correlations", "extra", "field"),
    [
        (["vague"], ["uncertain"], "unknown_key = 1\n", "sensitivity.unknown_key"),
        (["no_such_prior"], ["uncertain"], "", None),
        (["vague"], [1.5], "", "sensitivity"),
        (["vague", "vague"], ["uncertain"], "", "sensitivity"),
    ],
)
def test_bad_grids_are_one_line_errors_naming_the_field(tmp_path, prior_sets, correlations, extra, field):
    path = _spec_with_grid(tmp_path, prior_sets, correlations, extra)
    with pytest.raises(InputError) as err:
        load_spec(path)
    if field:
        assert field in err.value.one_line()
    assert "\n" not in err.value.one_line()


def test_margin_sets_rescale_to_the_outcome_scale_and_keep_unlisted_instruments(tmp_path):
    spec, _ = load_spec("default")
    pod = margin_sets(load_study("podichetty2004"), spec)  # VAS on 0-10
    assert pod["study"]["VAS"][0] == 1.5
    assert pod["methods_lower"]["VAS"][0] == pytest.approx(1.0)
    assert pod["methods_upper"]["VAS"][0] == pytest.approx(2.0)
    far = margin_sets(load_study("farpour2022"), spec)
    assert {o: v[0] for o, v in far["methods_lower"].items()} == {"VAS": 10, "ODI": 6, "QBPDS": 6, "RMDQ": 2}
    other = write_study(tmp_path / "s", outcomes={"X": {"instrument": "other", "margin": 4, "reference_sd": 8}})
    kept = margin_sets(load_study(other), spec)["methods_lower"]["X"]
    assert kept[0] == 4 and "study margin kept" in kept[1]


def test_fit_seeds_depend_on_the_configuration_not_its_position():
    a, b = FitConfig("vague", 0.25), FitConfig("vague", 0.75)
    assert a.seed(1) == FitConfig("vague", 0.25).seed(1)
    assert len({a.seed(1), b.seed(1), a.seed(2), FitConfig("vague", "uncertain").seed(1)}) == 4


def test_existing_folder_is_refused_before_any_sampling(tmp_path):
    folder = tmp_path / "farpour2022" / "sensitivity"
    folder.mkdir(parents=True)
    (folder / "keep.txt").write_text("not to be lost")
    result = runner.invoke(app, ["sensitivity", "farpour2022", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (folder / "keep.txt").read_text() == "not to be lost"


def test_figure_frames_flipped_decisions(tmp_path):
    rows = []
    for cfg, p in (("a | rho uncertain", 0.99), ("b | rho uncertain", 0.5)):
        for scope in ("cell", "joint_time"):
            rows.append(
                {
                    "configuration": cfg,
                    "margin_set": "study",
                    "scope": scope,
                    "time": 4.0,
                    "outcome": "ODI" if scope == "cell" else "all",
                    "prob_equivalence": p,
                    "decision": "equivalent" if p > 0.975 else "undecided",
                    "decision_differs_from_reference": p < 0.975,
                    "decision_threshold": 0.975,
                    "diagnostics_status": "ok" if p > 0.9 else "fail",
                }
            )
    plot_sensitivity(pd.DataFrame(rows), tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 10_000


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
    spec_path = _spec_with_grid(tmp_path, ["small_difference", "enthusiastic", "vague"], ["uncertain", 0.5])
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
    spec_path = _spec_with_grid(tmp_path, ["vague"], [0.2, 0.8])
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
    # and rho did change the fit: with rho 0.8 the change SD, and so the posterior spread, is smaller
    low = res.table[(res.table.configuration == FitConfig("vague", 0.2).label) & (res.table.scope == "cell")]
    assert low.iloc[0]["delta_sd_natural"] > 1.2 * swept["delta_sd_natural"]


def test_robustness_table_reports_the_range_and_who_breaks_equivalence():
    from bayes_stenosis.analyses import robustness_table

    rows = []
    for cfg, p, status in (("ref", 0.98, "ok"), ("a", 0.96, "ok"), ("b", 0.99, "fail")):
        for margin_set, shift in (("study", 0.0), ("methods_lower", -0.3)):
            rows.append(
                {
                    "configuration": cfg,
                    "margin_set": margin_set,
                    "scope": "cell",
                    "time": 4.0,
                    "outcome": "ODI",
                    "evidence": "threshold",
                    "prob_equivalence": p + shift,
                    "decision": "equivalent" if p + shift >= 0.975 else "undecided",
                    "diagnostics_status": status,
                }
            )
    out = robustness_table(pd.DataFrame(rows), "ref").iloc[0]
    # only the study margins count; the other margin set is a separate question
    assert (out["prob_equivalence_reference"], out["decision_reference"]) == (0.98, "equivalent")
    assert (out["prob_equivalence_min"], out["configuration_min"]) == (0.96, "a")
    assert (out["prob_equivalence_max"], out["configuration_max"]) == (0.99, "b")
    assert (out["n_fits"], out["n_equivalent"], out["n_failed_diagnostics"]) == (3, 2, 1)
    assert not out["equivalent_in_every_fit"]
