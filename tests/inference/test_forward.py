"""``inference.forward``: vectorised forward draws are PyMC's forward draws, made in one call."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayes_stenosis.inference.forward import forward_draws


def _toy_model() -> pm.Model:
    """Roots, a deterministic, a random variable of fixed size whose *second* parameter depends on a root
    (pytensor's own vectorisation of it fails), a multivariate variable with a batched covariance, and an
    observed variable."""
    with pm.Model(coords={"cell": ["a", "b", "c"]}) as model:
        scale = pm.HalfNormal("scale", 2.0)
        centre = pm.Normal("centre", 0.0, 1.0, dims="cell")
        effect = pm.Normal("effect", mu=0.0, sigma=scale, size=3)
        corr = pm.Beta("corr", 2.0, 2.0)
        cov = pm.math.stack([pm.math.stack([1.0, corr]), pm.math.stack([corr, 1.0])])
        pair = pm.MvNormal("pair", mu=np.zeros(2), cov=cov)
        pm.Deterministic("total", (centre + effect).sum() * pair[0], dims=())
        pm.Deterministic("fixed", pm.math.constant(np.array([0.5, 0.25])))  # no random ancestor
        pm.Normal("obs", centre + effect, 1.0, observed=np.zeros(3), dims="cell")
    return model


def test_forward_draws_are_pymcs_draws_of_the_same_seed():
    """Drawing all draws at once consumes each variable's random stream in the order PyMC's loop does, so
    the draws are PyMC's, to rounding (the vectorised arithmetic may differ in the last bits); groups, dims
    and coords are the same."""
    model = _toy_model()
    names = ["scale", "centre", "effect", "corr", "pair", "total", "fixed", "obs"]
    vectorised = forward_draws(model, names, draws=400, seed=11)
    with model:
        looped = pm.sample_prior_predictive(draws=400, random_seed=11, var_names=names)
    assert set(vectorised.groups()) == set(looped.groups())
    for group in ("prior", "prior_predictive"):
        assert set(vectorised[group].data_vars) == set(looped[group].data_vars)
        for name, expected in looped[group].data_vars.items():
            got = vectorised[group][name]
            assert got.dims == expected.dims and got.shape == expected.shape, name
            np.testing.assert_allclose(got.values, expected.values, rtol=1e-10, atol=1e-12, err_msg=name)


def test_forward_draws_of_the_flagship_are_pymcs_draws():
    """The flagship's decision-table draws of delta (its correlated threshold-model prior)."""
    from bayes_stenosis.model import build_model
    from bayes_stenosis.run.fit import prepare_fit

    prepared = prepare_fit("farpour2022")
    model = build_model(prepared.inputs, prepared.spec, prepared.prior)
    vectorised = forward_draws(model, ["delta_natural"], draws=2000, seed=5).prior["delta_natural"]
    with model, pytest.warns(UserWarning, match="Potentials"):  # the threshold term: not part of the prior
        looped = pm.sample_prior_predictive(draws=2000, random_seed=5, var_names=["delta_natural"])
    np.testing.assert_allclose(vectorised.values, looped.prior["delta_natural"].values, rtol=1e-10, atol=1e-10)


def test_the_same_seed_gives_the_same_draws_and_another_seed_others():
    model = _toy_model()
    first, again, other = (forward_draws(model, ["total"], 50, seed).prior["total"].values for seed in (3, 3, 4))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_a_variable_that_depends_on_a_flat_prior_cannot_be_drawn():
    with pm.Model() as model:
        flat = pm.Flat("flat")
        pm.Normal("child", flat, 1.0)
    with pytest.raises(NotImplementedError):
        forward_draws(model, ["child"], 10, 1)


def test_a_composite_distribution_is_resized_whole():
    """``LKJCholeskyCov`` draws its standard deviations inside (``sd_dist``): the root is the model variable,
    resized whole, as the patient-level model's unstructured covariance needs. Its draws come in another
    order than PyMC's loop, so they are checked against the closed form: with n = 3 and eta = 2 each
    correlation is (2 Beta(2.5, 2.5) - 1) (Lewandowski, Kurowicka and Joe 2009) and each SD HalfNormal(1).
    Kolmogorov-Smirnov p-values above 0.001 at 4,000 draws (fixed seed); a wrong resizing (one correlation
    matrix for every draw, or SDs and correlations from different draws) fails them by orders of magnitude."""
    with pm.Model() as model:
        pm.LKJCholeskyCov("chol", n=3, eta=2.0, sd_dist=pm.HalfNormal.dist(1.0, size=3), compute_corr=False)
    packed = forward_draws(model, ["chol"], draws=4000, seed=9).prior["chol"].values[0]
    lower = np.zeros((4000, 3, 3))
    lower[:, *np.tril_indices(3)] = packed
    cov = lower @ np.transpose(lower, (0, 2, 1))
    sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    corr = cov / (sd[:, :, None] * sd[:, None, :])
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert stats.kstest((corr[:, i, j] + 1) / 2, stats.beta(2.5, 2.5).cdf).pvalue > 1e-3
    for k in range(3):
        assert stats.kstest(sd[:, k], stats.halfnorm().cdf).pvalue > 1e-3
    assert np.unique(corr[:, 0, 1]).size == 4000


def test_a_graph_that_cannot_be_vectorised_is_drawn_by_pymcs_loop():
    """A composite distribution whose parameter depends on another model variable has no vectorised form."""
    with pm.Model() as model:
        eta = pm.Gamma("eta", 5.0, 2.0)
        pm.LKJCholeskyCov("chol", n=2, eta=eta, sd_dist=pm.HalfNormal.dist(1.0, size=2), compute_corr=False)
    vectorised = forward_draws(model, ["chol", "eta"], draws=50, seed=4)
    with model:
        looped = pm.sample_prior_predictive(draws=50, random_seed=4, var_names=["chol", "eta"])
    np.testing.assert_array_equal(vectorised.prior["chol"].values, looped.prior["chol"].values)


def _data_model(centre: float, spread: float, cells: int = 3) -> pm.Model:
    """A structure whose hyperparameters are data (as a sweep's prior sets are)."""
    with pm.Model(coords={"cell": list(range(cells))}) as model:
        mu0 = pm.Data("mu0", centre)
        sd0 = pm.Data("sd0", spread)
        scale = pm.HalfNormal("scale", sd0)
        effect = pm.Normal("effect", mu=mu0, sigma=scale, dims="cell")
        pm.Deterministic("shifted", effect * 2.0 + mu0, dims="cell")
    return model


def test_a_reused_compile_gives_the_draws_of_a_fresh_one():
    """A model of an earlier model's structure takes that compile with its own data and seed: the draws are
    bit-identical to a fresh compile's, and the earlier model's data are left as they were."""
    from bayes_stenosis.inference.forward import FORWARD_FUNCTIONS

    first, second = _data_model(0.0, 1.0), _data_model(3.0, 0.2)
    names = ["effect", "shifted", "scale"]
    drawn_first = forward_draws(first, names, 300, seed=7)
    hits = FORWARD_FUNCTIONS.hits
    reused = forward_draws(second, names, 300, seed=8)
    assert FORWARD_FUNCTIONS.hits == hits + 1
    fresh = forward_draws(second, names, 300, seed=8, reuse=False)
    for name in names:
        np.testing.assert_array_equal(reused.prior[name].values, fresh.prior[name].values, err_msg=name)
    assert abs(reused.prior["effect"].values.mean() - 3.0) < 0.1  # the second model's data, not the first's
    assert float(first["mu0"].get_value()) == 0.0 and float(first["sd0"].get_value()) == 1.0
    again = forward_draws(first, names, 300, seed=7)
    for name in names:
        np.testing.assert_array_equal(again.prior[name].values, drawn_first.prior[name].values, err_msg=name)


def test_another_structure_or_number_of_draws_compiles_anew():
    from bayes_stenosis.inference.forward import FORWARD_FUNCTIONS

    forward_draws(_data_model(0.0, 1.0), ["effect"], 100, seed=1)
    hits = FORWARD_FUNCTIONS.hits
    wider = forward_draws(_data_model(0.0, 1.0, cells=4), ["effect"], 100, seed=1)
    more = forward_draws(_data_model(0.0, 1.0), ["effect"], 150, seed=1)
    assert FORWARD_FUNCTIONS.hits == hits
    assert wider.prior["effect"].shape == (1, 100, 4) and more.prior["effect"].shape == (1, 150, 3)


def test_the_flagships_prior_of_delta_under_another_prior_set_is_a_fresh_compiles():
    """A sweep's case: the decision table's prior draws of delta under two normal prior sets with partial
    pooling (one structure, hyperparameters as data), the second from the first's compile."""
    from bayes_stenosis.inference.forward import FORWARD_FUNCTIONS
    from bayes_stenosis.model import build_model, prior_sampling_model
    from bayes_stenosis.run.fit import prepare_fit

    draws = {}
    for prior_set in ("enthusiastic", "small_difference"):
        prepared = prepare_fit("farpour2022", prior_set=prior_set)
        model = build_model(prepared.inputs, prepared.spec, prepared.prior)
        forward = prior_sampling_model(prepared.inputs, prepared.spec, prepared.prior, model)
        hits = FORWARD_FUNCTIONS.hits
        draws[prior_set] = forward_draws(forward, ["delta_natural"], 2000, seed=5).prior["delta_natural"].values
        fresh = forward_draws(forward, ["delta_natural"], 2000, seed=5, reuse=False).prior["delta_natural"].values
        np.testing.assert_array_equal(draws[prior_set], fresh)
    assert FORWARD_FUNCTIONS.hits == hits + 1  # the second prior set reused the first's compile
    # the second prior set's hyperparameters: centred on 0, where the enthusiastic prior is not
    assert abs(draws["small_difference"].mean()) < abs(draws["enthusiastic"].mean())


def test_a_cached_function_that_cannot_take_the_data_is_compiled_afresh():
    """A cached compile whose containers the new model lacks (by name) is not used: a fresh compile replaces
    it, with the fresh draws."""
    from bayes_stenosis.inference.forward import FORWARD_FUNCTIONS

    forward_draws(_data_model(0.0, 1.0), ["effect"], 120, seed=2)
    (key,) = [k for k in FORWARD_FUNCTIONS.values if k[1:] == (("effect",), 120)]
    stale = FORWARD_FUNCTIONS.values[key]
    stale.data["not_in_any_model"] = stale.data["mu0"]
    model = _data_model(2.0, 0.5)
    drawn = forward_draws(model, ["effect"], 120, seed=3).prior["effect"].values
    fresh = forward_draws(model, ["effect"], 120, seed=3, reuse=False).prior["effect"].values
    np.testing.assert_array_equal(drawn, fresh)
    assert FORWARD_FUNCTIONS.values[key] is not stale
