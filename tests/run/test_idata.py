"""posterior.nc a reader can use: no transformed variables, every dimension named (with its labels), units
and long names on the natural-unit quantities, the time coordinate with its unit, a prior predictive for
threshold statements; and no draw changed on the way."""

from __future__ import annotations

import dataclasses
import re

import arviz as az
import numpy as np
import pytest
import xarray as xr

from bayes_stenosis.inference import SamplerSettings, draw_prior
from bayes_stenosis.model import (
    STATEMENT_VARIABLES,
    build_model,
    prior_sampling_model,
    simulate_study_statement_statistics,
    statement_reproduced,
    threshold_design,
)
from bayes_stenosis.run import prepare_fit
from bayes_stenosis.run.idata import tidy_inference_data
from bayes_stenosis.testing import spec_variant, write_study

# one worker runs this module: its module-scoped fixture is costly (pytest -n 2 --dist loadgroup)
pytestmark = pytest.mark.xdist_group("idata_prior")

OUTCOMES = {
    "ODI": {"instrument": "ODI", "scale_max": 100, "margin": 10, "reference_sd": 16},
    "VAS": {"instrument": "VAS", "scale_max": 100, "margin": 15, "reference_sd": 20},
}


def threshold_rows():
    """ODI: "P>0.05" between arms at weeks 4 and 8 (rows 2, 3), "P<0.05" within the new arm (row 4)."""
    rows = [
        {"outcome": o, "time": t, "comparison": "between", "relation": ">", "alpha": 0.05, "test": "two_sample_t"}
        for t in (4, 8)
        for o in ("ODI",)
    ]
    rows.append(
        {
            "outcome": "ODI",
            "time": 4,
            "comparison": "within",
            "arm": "new_arm",
            "relation": "<",
            "alpha": 0.05,
            "direction": "improvement",
            "test": "paired_t",
        }
    )
    return rows


def arm_rows():
    """VAS: score summaries at baseline and week 4, change summaries at week 8, per arm."""
    rows = []
    for arm in ("reference_arm", "new_arm"):
        for o in ("VAS",):
            rows.append({"arm": arm, "outcome": o, "time": 0, "kind": "score", "n": 20, "mean": 40, "sd": 15})
            rows.append({"arm": arm, "outcome": o, "time": 4, "kind": "score", "n": 20, "mean": 30, "sd": 16})
            rows.append({"arm": arm, "outcome": o, "time": 8, "kind": "change", "n": 20, "mean": -9, "sd": 14})
    return rows


def prior_only(study, spec, prior_set="weakly_informative"):
    """Prior and prior predictive draws of a study's model (no posterior sampling), as ``fit`` stores them."""
    prepared = prepare_fit(study, spec=spec, prior_set=prior_set)
    model = build_model(prepared.inputs, prepared.spec, prepared.prior)
    forward = prior_sampling_model(prepared.inputs, prepared.spec, prepared.prior, model)
    settings = dataclasses.replace(SamplerSettings.from_spec(prepared.spec.sampler, seed=1), prior_draws=60)
    idata = draw_prior(forward, settings)
    # the statements' prior replicate, simulated jointly as fit does (run.statements)
    prior = idata.prior
    draws = {name: prior[name].values[0] for name in STATEMENT_VARIABLES if name in prior}
    design = threshold_design(prepared.inputs, prepared.spec)
    rng = np.random.default_rng(7)
    t_stat = simulate_study_statement_statistics(draws, prepared.inputs, prepared.spec, rng)
    events = statement_reproduced(t_stat, design)[:, 0, :]
    replicate = xr.DataArray(
        events[None].astype("int8"),
        dims=("chain", "draw", "threshold_row"),
        coords={"chain": prior.chain, "draw": prior.draw, "threshold_row": prior.threshold_row},
    )
    if "prior_predictive" in idata.groups():  # arm summaries have their own replicates
        idata.prior_predictive["threshold_event"] = replicate
    else:
        idata.add_groups(prior_predictive=xr.Dataset({"threshold_event": replicate}))
    return idata, prepared


@pytest.fixture(scope="module", params=["joint", "independent"])
def tidied(tmp_path_factory, request):
    """The study's prior draws before and after tidying, with the statements one joint event (the default)
    and with the per-statement likelihood (their latent variables differ)."""
    root = tmp_path_factory.mktemp("idata")
    study = write_study(
        root / "study",
        outcomes=OUTCOMES,
        follow_up=(4.0, 8.0),
        rows={"thresholds.csv": threshold_rows(), "arm_summaries.csv": arm_rows()},
    )
    idata, prepared = prior_only(study, spec_variant(thresholds={"statement_dependence": request.param}))
    before = {g: getattr(idata, g).copy(deep=True) for g in idata.groups()}
    tidy_inference_data(idata, prepared.study, prepared.inputs, prepared.spec)
    path = root / "posterior.nc"
    idata.to_netcdf(str(path))
    return before, az.from_netcdf(str(path)), prepared


def test_every_dimension_is_named(tidied):
    before, idata, prepared = tidied
    assert any(re.search(r"_dim_\d+$", str(d)) for g in before.values() for d in g.dims)  # there was work to do
    for group in idata.groups():
        unnamed = [d for d in getattr(idata, group).dims if re.search(r"_dim_\d+$", str(d))]
        assert unnamed == [], (group, unnamed)
    const = idata.constant_data
    assert const["threshold_nodes"].dims == ("threshold_row", "quadrature_node")
    assert list(const["threshold_between_test"].coords["between_test"].values) == ["change", "follow_up", "ancova"]
    # threshold statements are rows 2.. of thresholds.csv
    assert list(const["threshold_crit"].coords["threshold_row"].values) == [2, 3, 4]
    if prepared.spec.thresholds.statement_dependence == "independent":  # the between-arm rows' chi-squares
        assert list(idata.prior["threshold_chi2"].coords["threshold_chi2_row"].values) == [2, 3]
    else:  # each arm's chi-square per cell (two-sample t: both arms' SDs) and the cells' correlation
        sds = ["reference_arm|4|ODI", "reference_arm|8|ODI", "new_arm|4|ODI", "new_arm|8|ODI"]
        assert list(idata.prior["threshold_joint_chi2"].coords["threshold_joint_sd"].values) == sds
        corr = idata.prior["threshold_cell_corr"]
        assert corr.dims[2:] == ("threshold_cell", "threshold_cell_other")
        assert list(corr.coords["threshold_cell"].values) == ["4|ODI", "8|ODI"]
    # arm summaries: the reported SDs by the cells (or outcomes) they describe
    assert list(const["n_new_arm"].coords["new_arm_cell"].values) == ["4|VAS", "8|VAS"]
    assert idata.observed_data["obs_mean_change_new_arm"].dims == ("new_arm_cell",)
    assert list(idata.prior["sd_change_new_arm"].coords["new_arm_change_sd_cell"].values) == ["8|VAS"]
    assert list(idata.prior["sd_baseline_new_arm"].coords["new_arm_baseline_sd_outcome"].values) == ["VAS"]


def test_units_and_long_names(tidied):
    _, idata, prepared = tidied
    prior = idata.prior
    assert prior["time"].attrs == {"units": "weeks", "long_name": "follow-up time since baseline"}
    assert "new_arm minus reference_arm" in prior["delta_natural"].attrs["long_name"]
    assert "outcome_unit" in prior["delta_natural"].attrs["units"]
    assert list(prior["outcome_unit"].values) == ["points", "points"]
    np.testing.assert_array_equal(prior["outcome_standardising_sd"].values, prepared.inputs.scale)
    # the coordinate is what turns standardized draws into natural ones
    np.testing.assert_allclose(prior["delta_natural"], prior["delta"] * prior["outcome_standardising_sd"])


def test_every_drawn_variable_has_a_unit_and_a_long_name(tidied):
    """Not only delta: tau, rho, the SD ratios, the correlations, the statements' quantities, the z innovations
    (a reader of posterior.nc in another tool sees what each is and in which unit)."""
    _, idata, _ = tidied
    for group in ("prior", "prior_predictive"):
        ds = getattr(idata, group)
        bare = [v for v in ds.data_vars if not {"units", "long_name"} <= set(ds[v].attrs)]
        assert bare == [], (group, bare)
    prior = idata.prior
    assert prior["rho"].attrs["units"] == "1" and "baseline and follow-up" in prior["rho"].attrs["long_name"]
    assert "outcome_standardising_sd" in prior["tau"].attrs["units"]
    assert "innovation of delta" in prior["z_delta"].attrs["long_name"]


def test_no_draw_changes_and_threshold_statements_have_a_prior_predictive(tidied):
    before, idata, _ = tidied
    for name in ("delta_natural", "change", "threshold_log_prob"):
        np.testing.assert_array_equal(idata.prior[name].values, before["prior"][name].values)
    assert "prior_predictive" in idata.groups() and "threshold_event" in idata.prior_predictive
    # per statement the replicate holds with probability P(event): the likelihood's quadrature agrees
    event = idata.prior_predictive["threshold_event"].values
    prob = np.exp(idata.prior["threshold_log_prob"].values)
    assert set(np.unique(event)) <= {0, 1}
    assert abs(event.mean() - prob.mean()) < 4 * np.sqrt(prob.mean() * (1 - prob.mean()) / event.size)


def test_transformed_variables_are_dropped_with_their_dims(tidied):
    _, _, prepared = tidied
    draws = np.zeros((1, 5, 2))
    posterior = xr.Dataset(
        {
            "tau": (("chain", "draw"), np.ones((1, 5))),
            "tau_log__": (("chain", "draw"), np.zeros((1, 5))),
            "rho_logodds__": (("chain", "draw", "rho_logodds___dim_0"), draws),
            "w_interval__": (("chain", "draw"), np.zeros((1, 5))),
        }
    )
    idata = az.InferenceData(posterior=posterior)
    tidy_inference_data(idata, prepared.study, prepared.inputs, prepared.spec)
    assert list(idata.posterior.data_vars) == ["tau"] and "rho_logodds___dim_0" not in idata.posterior.dims
