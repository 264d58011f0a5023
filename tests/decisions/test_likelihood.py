"""The likelihood approximation (the prior divided out of the posterior's normal approximation), checked
against closed forms: conjugate normal models where the likelihood is known exactly, and the exact moments
of the pooled prior against its generative definition."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from bayes_stenosis import decisions as dec

Z = 4.0  # tolerance in Monte Carlo SEs


def _draws(values: np.ndarray, times, outcomes) -> xr.DataArray:
    return xr.DataArray(
        values, dims=("chain", "draw", "time", "outcome"), coords={"time": list(times), "outcome": list(outcomes)}
    )


def conjugate_posterior(m0, s0, d, v):
    """Posterior mean and covariance of delta ~ N(m0, s0) with d ~ N(delta, v) (all matrices)."""
    p = np.linalg.inv(s0) + np.linalg.inv(v)
    cov = np.linalg.inv(p)
    return cov @ (np.linalg.solve(s0, m0) + np.linalg.solve(v, d)), cov


def delta_method_se(f, mean, cov, n):
    """SE of f(sample mean, sample covariance) of n independent normal draws, by the delta method with
    numerical derivatives: Var(mean_i) = cov_ii / n, Var(cov_ij) = (cov_ij^2 + cov_ii cov_jj) / n, the
    mean and covariance estimates independent (normal draws)."""
    k = len(mean)
    base = f(mean, cov)
    var = 0.0
    for i in range(k):
        h = 1e-6 * max(1.0, np.sqrt(cov[i, i]))
        m = mean.copy()
        m[i] += h
        var += ((f(m, cov) - base) / h) ** 2 * cov[i, i] / n
    for i in range(k):
        for j in range(i, k):
            h = 1e-6 * max(1.0, abs(cov[i, j]))
            c = cov.copy()
            c[i, j] += h
            if i != j:
                c[j, i] += h
            var += ((f(mean, c) - base) / h) ** 2 * (cov[i, j] ** 2 + cov[i, i] * cov[j, j]) / n
    return np.sqrt(var)


@pytest.mark.parametrize("cells", [1, 2])
def test_dividing_out_a_normal_prior_recovers_the_conjugate_likelihood(cells):
    rng = np.random.default_rng(11)
    # one cell, or two cells of one time point with correlated reported estimates
    d = np.array([-2.0, 1.0])[:cells]
    v = (np.array([[9.0, 3.0], [3.0, 4.0]]))[:cells, :cells]
    prior = dec.normal_prior("normal", 0.0, 3.0, 1, cells, pooled=False, tau_scale=0.0)
    assert prior.exact
    mean, cov = conjugate_posterior(prior.mean, prior.covariance, d, v)
    chains, draws = 4, 5000
    values = rng.multivariate_normal(mean, cov, size=(chains, draws))[:, :, None, :]
    outcomes = ["ODI", "RMDQ"][:cells]
    delta = _draws(values, [4.0], outcomes)
    posterior = dec.normal_approximation(delta, delta, dict.fromkeys(outcomes, 1.0), dict.fromkeys(outcomes, "points"))
    block = dec.likelihood_block(posterior, prior, np.ones(cells), gaussian_evidence=True)
    assert block["status"] == "ok" and block["exact"] is True
    n = chains * draws
    got = np.array(block["mean_natural"])
    got_cov = np.array(block["covariance_natural"])

    def lik(m, c):
        p = np.linalg.inv(c) - np.linalg.inv(prior.covariance)
        return np.linalg.solve(p, np.linalg.solve(c, m) - np.linalg.solve(prior.covariance, prior.mean))

    for i in range(cells):
        se_mean = delta_method_se(lambda m, c, i=i: lik(m, c)[i], mean, cov, n)
        assert abs(got[i] - d[i]) < Z * se_mean, (i, got[i], d[i], se_mean)
        var = lambda m, c, i=i: np.linalg.inv(np.linalg.inv(c) - np.linalg.inv(prior.covariance))[i, i]  # noqa: E731
        se_var = delta_method_se(var, mean, cov, n)
        assert abs(got_cov[i, i] - v[i, i]) < Z * se_var, (i, got_cov[i, i], v[i, i], se_var)
        assert block["se_natural"][i] == pytest.approx(np.sqrt(got_cov[i, i]))
    # the standardized scale is the natural one divided by the standardising SDs (here 1)
    np.testing.assert_allclose(block["mean_std"], got)


def test_the_natural_scale_is_the_standardized_one_times_the_sds():
    rng = np.random.default_rng(2)
    scale = np.array([16.0, 4.5])
    prior = dec.normal_prior("normal", 0.0, 0.5, 1, 2, pooled=False, tau_scale=0.0)
    std = rng.multivariate_normal([0.1, -0.2], [[0.04, 0.01], [0.01, 0.09]], size=(2, 3000))[:, :, None, :]
    delta_std = _draws(std, [4.0], ["ODI", "RMDQ"])
    delta_nat = delta_std * xr.DataArray(scale, dims="outcome", coords={"outcome": ["ODI", "RMDQ"]})
    post = dec.normal_approximation(delta_nat, delta_std, {"ODI": 10.0, "RMDQ": 2.0}, {"ODI": "p", "RMDQ": "p"})
    block = dec.likelihood_block(post, prior, scale)
    np.testing.assert_allclose(block["mean_natural"], np.array(block["mean_std"]) * scale, rtol=1e-12)
    np.testing.assert_allclose(
        block["covariance_natural"], np.array(block["covariance_std"]) * np.outer(scale, scale), rtol=1e-12
    )
    corr = np.array(block["covariance_std"])
    corr = corr[0, 1] / np.sqrt(corr[0, 0] * corr[1, 1])
    assert block["correlation"][0][1] == pytest.approx(corr)


def test_pooled_normal_prior_moments_match_its_generative_definition():
    # delta[t, o] = Delta[t] + tau z[t, o], Delta[t] ~ N(0.1, 0.5^2), tau ~ HalfNormal(0.15): 2 times x 3 outcomes
    prior = dec.normal_prior("normal", 0.1, 0.5, 2, 3, pooled=True, tau_scale=0.15)
    assert not prior.exact and "approximation" in prior.method
    # closed form: same time 0.25 (+ 0.0225 on the diagonal), different times 0
    assert prior.covariance[0, 0] == pytest.approx(0.25 + 0.15**2)
    assert prior.covariance[0, 1] == pytest.approx(0.25) and prior.covariance[0, 3] == 0.0
    rng = np.random.default_rng(5)
    n = 400_000
    draws = rng.normal(0.1, 0.5, (n, 2))[:, :, None] + np.abs(rng.normal(0, 0.15, (n, 1, 1))) * rng.normal(
        size=(n, 2, 3)
    )
    x = draws.reshape(n, 6)
    np.testing.assert_allclose(x.mean(axis=0), prior.mean, atol=Z * np.sqrt(0.2725 / n))
    sample = np.cov(x, rowvar=False)
    se = np.sqrt((sample**2 + np.outer(np.diag(sample), np.diag(sample))) / n)
    assert np.all(np.abs(sample - prior.covariance) < Z * se)
    # one outcome: delta = Delta, exactly normal, no tau
    single = dec.normal_prior("normal", 0.0, 0.5, 2, 1, pooled=True, tau_scale=0.15)
    assert single.exact and np.array_equal(single.covariance, 0.25 * np.eye(2))


def test_a_student_t_prior_is_moment_matched_from_draws_and_refused_analytically():
    with pytest.raises(ValueError, match="moment_matched_prior"):
        dec.normal_prior("student_t", 0.0, 0.37, 1, 1, pooled=False, tau_scale=0.0)
    rng = np.random.default_rng(3)
    x = 0.37 * rng.standard_t(5, size=(20_000, 2))
    matched = dec.moment_matched_prior(x, "Student-t(5, 0, 0.37)")
    np.testing.assert_allclose(matched.mean, x.mean(axis=0))
    np.testing.assert_allclose(matched.covariance, np.cov(x, rowvar=False))
    assert not matched.exact and "moment-matched normal of 20,000 prior draws" in matched.method


def test_a_posterior_no_narrower_than_the_prior_has_no_likelihood():
    prior = dec.normal_prior("normal", 0.0, 1.0, 1, 2, pooled=False, tau_scale=0.0)
    # wider than the prior in the second cell: posterior precision - prior precision < 0 there
    result = dec.divide_out_prior(np.zeros(2), np.diag([0.5, 1.5]), prior)
    assert result["status"] == "not_positive_definite" and "no narrower than the prior" in result["reason"]
    # cells without evidence are left out before dividing (their posterior is their prior)
    kept = dec.divide_out_prior(np.array([0.5, 0.0]), np.diag([0.5, 1.0]), prior, keep=np.array([True, False]))
    assert kept["status"] == "ok"
    assert kept["covariance"][0, 0] == pytest.approx(1.0) and kept["mean"][0] == pytest.approx(1.0)


def full_approximation(posterior: dict, block: dict) -> dict:
    """A complete approximations.json built around a posterior approximation (what the run layer adds)."""
    outcomes = list(dict.fromkeys(c["outcome"] for c in posterior["cells"]))
    return posterior | {
        "description": "POSTERIOR (includes the prior)",
        "direction": ["lower_is_better"] * len(posterior["names"]),
        "time_unit": "weeks",
        "standardising_sds": [{"outcome": o, "sd": 1.0, "unit": "points", "source": "test"} for o in outcomes],
        "prior": {"set": "test"},
        "likelihood": block,
    }


def test_validate_checks_the_likelihood_block():
    rng = np.random.default_rng(4)
    delta = _draws(rng.normal(size=(2, 500, 1, 2)) * 0.3, [4.0], ["ODI", "RMDQ"])
    posterior = dec.normal_approximation(delta, delta, {"ODI": 1.0, "RMDQ": 1.0}, {"ODI": "p", "RMDQ": "p"})
    prior = dec.normal_prior("normal", 0.0, 1.0, 1, 2, pooled=False, tau_scale=0.0)
    approx = full_approximation(posterior, dec.likelihood_block(posterior, prior, np.ones(2)))
    dec.validate_approximation(json.loads(json.dumps(approx, allow_nan=False)))
    broken = {
        "missing key": approx | {"likelihood": {k: v for k, v in approx["likelihood"].items() if k != "method"}},
        "status must be one of": approx | {"likelihood": approx["likelihood"] | {"status": "maybe"}},
        "not contrasts of 'names'": approx | {"likelihood": approx["likelihood"] | {"names": ["x", "y"]}},
        "'approximates' must be 'posterior'": approx | {"approximates": "likelihood"},
        "likelihood covariance_natural": approx
        | {"likelihood": approx["likelihood"] | {"covariance_natural": [[1.0, 2.0], [2.0, 1.0]]}},
    }
    for message, obj in broken.items():
        with pytest.raises(ValueError, match=message):
            dec.validate_approximation(obj)
