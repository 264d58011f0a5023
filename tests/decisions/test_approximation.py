"""``decisions.approximation``: the normal approximation of the posterior draws and its schema.

Draws come from known normals (independent draws, seeded), so every probability, quantile and
moment has a closed form. Tolerances are stated in Monte Carlo standard errors (MCSE): an estimate
must lie within 4 MCSE of its closed form, where the MCSE is the one the code itself reports
(and, for independent draws, that MCSE is checked against the binomial/normal-theory value).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bayes_stenosis import decisions as dec
from tests.decisions.known_normals import CHAINS, DRAWS, MARGINS, MU, SCALE, SD, N, Z, draws_by_cell, standardised


@pytest.fixture(scope="module")
def bivariate():
    """A known bivariate normal (correlation 0.6) in two cells, and its normal approximation."""
    rng = np.random.default_rng(3)
    sd = np.array([SD["ODI"], SD["RMDQ"]])
    cov = np.diag(sd) @ np.array([[1.0, 0.6], [0.6, 1.0]]) @ np.diag(sd)
    mean = np.array([MU["ODI"], MU["RMDQ"]])
    x = rng.multivariate_normal(mean, cov, size=(CHAINS, DRAWS))[:, :, None, :]
    delta = draws_by_cell(x, [4.0], ["ODI", "RMDQ"])
    approx = dec.normal_approximation(delta, standardised(delta), MARGINS, {"ODI": "points", "RMDQ": "points"})
    return mean, cov, approx


def test_normal_approximation_recovers_a_bivariate_normal(bivariate):
    mean, cov, approx = bivariate
    assert approx["names"] == ["delta[time=4,outcome=ODI]", "delta[time=4,outcome=RMDQ]"]
    assert approx["cells"] == [{"time": 4.0, "outcome": "ODI"}, {"time": 4.0, "outcome": "RMDQ"}]
    assert approx["units"] == ["points", "points"] and approx["margins"] == [10.0, 2.5]
    assert approx["n_draws"] == N
    # means within 4 MCSE (independent draws: sd / sqrt(N))
    assert np.all(np.abs(np.array(approx["mean_natural"]) - mean) < Z * np.sqrt(np.diag(cov) / N))
    # covariances within 4 SE of a sample covariance, sqrt((s_ij^2 + s_ii s_jj) / N)
    got = np.array(approx["covariance_natural"])
    se_cov = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / N)
    assert np.all(np.abs(got - cov) < Z * se_cov)
    # correlation within 4 SE of a sample correlation, (1 - rho^2) / sqrt(N)
    r = got[0, 1] / np.sqrt(got[0, 0] * got[1, 1])
    assert abs(r - 0.6) < Z * (1 - 0.6**2) / np.sqrt(N)
    assert approx["correlation"][0][1] == pytest.approx(r, rel=1e-12) and approx["correlation"][0][0] == 1.0
    assert approx["approximates"] == "posterior"
    # the standardised scale is the same approximation divided by the scales
    s = np.array([SCALE["ODI"], SCALE["RMDQ"]])
    np.testing.assert_allclose(approx["mean_std"], np.array(approx["mean_natural"]) / s, rtol=1e-10)
    np.testing.assert_allclose(approx["covariance_std"], got / np.outer(s, s), rtol=1e-10)
    for fit in approx["marginal_fit"]:
        assert abs(fit["skewness"]) < Z * np.sqrt(6 / N)  # SE of sample skewness
        assert abs(fit["excess_kurtosis"]) < Z * np.sqrt(24 / N)  # SE of sample excess kurtosis
        assert fit["ks_distance"] < 1.63 / np.sqrt(N)  # 1 % KS critical value (conservative: fitted params)
        # SE of the 2.5 % quantile in SDs: sqrt(p (1 - p) / N) / pdf(z_p) = 0.019; 4 of those
        assert fit["max_quantile_error_sd"] < Z * 0.019


def test_normal_approximation_flags_a_skewed_marginal():
    rng = np.random.default_rng(8)
    x = draws_by_cell(rng.exponential(3.0, size=(2, 3000, 1, 1)), [4.0], ["ODI"])
    fit = dec.normal_approximation(x, x, MARGINS, {"ODI": "points"})["marginal_fit"][0]
    assert fit["skewness"] == pytest.approx(2.0, abs=0.3) and fit["ks_distance"] > 0.05
    assert fit["max_quantile_error_sd"] > 0.1


def test_validate_approximation_accepts_output_and_rejects_broken(bivariate):
    _, _, posterior = bivariate
    with pytest.raises(ValueError, match="missing required key"):  # the posterior alone does not say enough
        dec.validate_approximation(posterior)
    prior = dec.normal_prior("normal", 0.0, 1.0, 1, 2, pooled=False, tau_scale=0.0)
    approx = posterior | {
        "description": "POSTERIOR (includes the prior)",
        "direction": ["lower_is_better"] * 2,
        "time_unit": "weeks",
        "standardising_sds": [{"outcome": o, "sd": SCALE[o], "unit": "points", "source": "test"} for o in SCALE],
        "prior": {"set": "test"},
        "likelihood": dec.likelihood_block(posterior, prior, np.array([SCALE["ODI"], SCALE["RMDQ"]])),
    }
    dec.validate_approximation(approx)
    # JSON round trip with caller metadata
    text = json.dumps(approx | {"metadata": {"study": "x", "simulated": True}}, allow_nan=False)
    dec.validate_approximation(json.loads(text))
    broken = {
        "symmetric": approx | {"covariance_natural": [[25.0, 6.0], [5.0, 4.0]]},
        "semi-definite": approx | {"covariance_std": [[1.0, 2.0], [2.0, 1.0]]},
        "square": approx | {"covariance_natural": [[25.0, 6.0]]},
        "length": approx | {"units": ["points"]},
        "missing": {k: v for k, v in approx.items() if k != "names"},
        "unknown": approx | {"p_value": 0.03},
        "mean_natural": approx | {"mean_natural": [float("nan"), 1.0]},
        "metadata": approx | {"metadata": "not a dict"},
        "marginal_fit entry": approx | {"marginal_fit": [{"name": "x"}] * 2},
    }
    for message, obj in broken.items():
        with pytest.raises(ValueError, match=message):
            dec.validate_approximation(obj)
    with pytest.raises(ValueError, match="JSON object"):
        dec.validate_approximation([approx])  # type: ignore[arg-type]
