"""Fast checks of the marginalised arm-summary term and of threshold event kinds held as data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats

from bayes_stenosis import simulation as sim
from bayes_stenosis.model import (
    EVENT_KIND_CODES,
    build_model,
    chi_nodes,
    data_values,
    log_prob_event,
    log_prob_event_coded,
    prepare_inputs,
    resolve_prior,
)
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import spec_variant


def _model(folder: Path, spec):
    inputs = prepare_inputs(load_study(folder), spec)
    return build_model(inputs, spec, resolve_prior(spec, "weakly_informative", inputs))


def _simulated(tmp_path: Path, level: str, seed: int, delta=0.0, n=20) -> Path:
    truth = sim.default_truth(n_per_arm=(n, n), delta=delta)
    return sim.write_study(
        tmp_path / f"{level}_{seed}", truth, sim.simulate_patients(truth, seed=seed), levels=[level], seed=seed
    )


@pytest.mark.parametrize("df", [18.5, np.inf])
def test_coded_event_kinds_equal_the_static_ones(df):
    lam_v, crit_v = pt.dvector("lam"), pt.dvector("crit")
    nodes_m, log_w_m, code_v = pt.dmatrix("nodes"), pt.dmatrix("log_w"), pt.lvector("code")
    coded = pytensor.function(
        [code_v, lam_v, crit_v, nodes_m, log_w_m], log_prob_event_coded(code_v, lam_v, crit_v, nodes_m, log_w_m)
    )
    lam = np.linspace(-40, 40, 81)  # includes events of probability far below 1e-300
    crit = np.full_like(lam, stats.t.ppf(0.975, df) if np.isfinite(df) else stats.norm.ppf(0.975))
    nodes, log_w = chi_nodes(df, 32)
    nodes, log_w = np.tile(nodes, (len(lam), 1)), np.tile(log_w, (len(lam), 1))
    for kind, code in EVENT_KIND_CODES.items():
        static = pytensor.function(
            [lam_v, crit_v, nodes_m, log_w_m], log_prob_event(kind, lam_v, crit_v, nodes_m, log_w_m)
        )(lam, crit, nodes, log_w)
        got = coded(np.full(len(lam), code), lam, crit, nodes, log_w)
        assert np.all(np.isfinite(got)), kind
        # log-probabilities agree to 1e-8 absolute (the coded form reaches P near 1 through log1mexp);
        # both match scipy to 1e-7 relative (test_model.py)
        np.testing.assert_allclose(got, static, rtol=1e-10, atol=1e-8, err_msg=kind)


def test_threshold_kinds_as_data_give_one_design_and_the_same_log_density(tmp_path):
    spec = spec_variant(thresholds={"kinds_as_data": True})
    static_spec = spec_variant()
    # a null and a large effect: different statements are P<0.05 in the two trials
    folders = [_simulated(tmp_path, "threshold", 1), _simulated(tmp_path, "threshold", 2, delta=-12.0)]
    kinds = [load_study(f).evidence["threshold"]["relation"].tolist() for f in folders]
    assert kinds[0] != kinds[1]
    models = [_model(f, spec) for f in folders]
    values = [data_values(m) for m in models]
    assert values[0].keys() == values[1].keys()
    assert all(values[0][k].shape == values[1][k].shape for k in values[0])
    assert not np.array_equal(values[0]["threshold_kind"], values[1]["threshold_kind"])
    for folder, model in zip(folders, models, strict=True):
        static = _model(folder, static_spec)
        point = static.initial_point()
        rng = np.random.default_rng(0)
        point = {k: v + 0.3 * rng.standard_normal(np.shape(v)) for k, v in point.items()}
        np.testing.assert_allclose(model.compile_logp()(point), static.compile_logp()(point), rtol=1e-10)
        np.testing.assert_allclose(model.compile_dlogp()(point), static.compile_dlogp()(point), rtol=1e-8)


def test_marginalised_arm_summaries_keep_the_prior_and_the_observed_nodes(tmp_path):
    """Integrating the outcome deviations out must not change the prior of delta or of the change,
    nor the observed nodes (names, shapes) that the outputs read."""
    folder = _simulated(tmp_path, "arm_summary_change", 3)
    draws = 4000
    prior = {}
    for param in ("noncentred", "marginalised"):
        model = _model(folder, spec_variant(hierarchy={"change_parameterisation": param}))
        assert {v.name for v in model.observed_RVs} >= {"obs_mean_change_reference_arm", "obs_mean_change_new_arm"}
        point = model.initial_point()
        assert np.isfinite(model.compile_logp()(point))
        assert np.all(np.isfinite(model.compile_dlogp()(point)))
        with model:
            prior[param] = pm.sample_prior_predictive(draws, random_seed=11, var_names=["delta", "change"]).prior
    assert "z_latent" not in prior["noncentred"] and "z_theta" not in prior["marginalised"]
    for name in ("delta", "change"):
        a = prior["noncentred"][name].values.reshape(draws, -1)
        b = prior["marginalised"][name].values.reshape(draws, -1)
        # independent draws: the SD of each cell agrees within 4 standard errors of a difference of SDs
        # (SE of a sample SD ~ sd / sqrt(2 n) for near-normal, inflated x2 for the Student-t tails)
        se = 2 * a.std(0) / np.sqrt(2 * draws) * np.sqrt(2)
        assert np.all(np.abs(a.std(0) - b.std(0)) < 4 * se), name
        assert np.all(np.abs(a.mean(0) - b.mean(0)) < 4 * np.sqrt(2 / draws) * a.std(0)), name
