"""The batched convergence statistics equal ArviZ's, quantity by quantity.

``bayes_stenosis.stats.mcmc`` re-implements ArviZ 0.23's arithmetic over many quantities at once; these tests
compare every statistic with ArviZ's own on draws that reach each branch of Geyer's sequences: independent,
positively and negatively autocorrelated (AR(1) with phi up to 0.99, whose sequence runs to the last lag of a
short chain), binary indicators (ties in the ranks, rare events), constant, short, single-chain and NaN draws.
Both compute the same floating-point expressions in another order, so they agree to rounding: 1e-9 relative.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
import xarray as xr

from bayes_stenosis.stats import mcmc

RTOL = 1e-9


def _ar1(rng: np.random.Generator, chains: int, draws: int, phi: np.ndarray) -> np.ndarray:
    """AR(1) chains, one column per phi: (chain, draw, len(phi))."""
    x = np.empty((chains, draws, len(phi)))
    x[:, 0] = rng.normal(size=(chains, len(phi)))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + rng.normal(size=(chains, len(phi)))
    return x


def _mixed_draws(chains: int, draws: int, seed: int) -> np.ndarray:
    """(chain, draw, K) columns of every kind the package meets."""
    rng = np.random.default_rng(seed)
    phi = np.array([0.0, 0.3, 0.9, 0.99, -0.5, -0.9])
    columns = [_ar1(rng, chains, draws, phi)]
    columns.append(rng.normal(size=(chains, draws, 3)) + np.arange(chains)[:, None, None])  # chains disagree
    latent = _ar1(rng, chains, draws, np.array([0.5, 0.5, 0.5]))
    columns.append((latent > np.array([0.0, 1.5, 2.8])).astype(float))  # indicators, some rare
    columns.append(np.round(rng.normal(size=(chains, draws, 1)), 1))  # ties
    columns.append(np.full((chains, draws, 1), 0.7))  # constant
    columns.append(np.exp(rng.normal(size=(chains, draws, 1)) * 2))  # skewed
    return np.concatenate(columns, axis=2)


def _arviz(func, x: np.ndarray, **kwargs) -> np.ndarray:
    """ArviZ's statistic of each column, one column at a time."""
    out = []
    for k in range(x.shape[2]):
        ds = xr.Dataset({"x": (("chain", "draw"), x[:, :, k])})
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(float(func(ds, **kwargs)["x"]))
    return np.array(out)


def _varying_mcse(x: np.ndarray, ours: np.ndarray, theirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The MCSEs of the columns that vary; a constant column's is 0 here and rounding noise or NaN in ArviZ."""
    constant = np.ptp(x, axis=(0, 1)) == 0
    assert np.all(ours[constant] == 0)
    assert np.all(np.isnan(theirs[constant]) | (np.abs(theirs[constant]) < 1e-8))
    return ours[~constant], theirs[~constant]


SHAPES = [(4, 1500), (4, 1001), (2, 60), (8, 40), (1, 200), (4, 5), (3, 9)]


@pytest.mark.parametrize(("chains", "draws"), SHAPES)
def test_each_statistic_equals_arviz(chains, draws):
    x = _mixed_draws(chains, draws, seed=chains * 1000 + draws)
    expected = {
        "ess_bulk": _arviz(az.ess, x, method="bulk"),
        "ess_tail": _arviz(az.ess, x, method="tail"),
        "ess_mean": _arviz(az.ess, x, method="mean"),
        "rhat": _arviz(az.rhat, x),
        "mcse_mean": _arviz(az.mcse, x, method="mean"),
    }  # az.mcse(method="sd") fails with numba installed (ArviZ 0.23); its formula is checked through az.summary
    for name, want in expected.items():
        got = getattr(mcmc, name)(x)
        if name == "mcse_mean":
            got, want = _varying_mcse(x, got, want)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=0, equal_nan=True, err_msg=name)


@pytest.mark.parametrize(("chains", "draws"), [(4, 1500), (2, 60), (1, 200)])
def test_summary_equals_arviz_summary(chains, draws):
    x = _mixed_draws(chains, draws, seed=7 + draws)
    ds = xr.Dataset({"x": (("chain", "draw", "k"), x)})
    with np.errstate(invalid="ignore", divide="ignore"):
        want = az.summary(ds, kind="all", round_to="none")
    got = mcmc.convergence_summary(x)
    for column in ("mean", "sd", "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat"):
        ours, theirs = getattr(got, column), want[column].to_numpy()
        if column.startswith("mcse"):
            ours, theirs = _varying_mcse(x, ours, theirs)
        # a constant's SD is rounding noise on both sides (1e-16 here, up to 1e-13 in xarray's): atol 1e-12
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=1e-12, equal_nan=True, err_msg=column)


def test_cell_shape_is_kept_and_nan_draws_give_nan():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 100, 2, 3))
    x[1, 5, 1, 2] = np.nan
    for func in (mcmc.ess_bulk, mcmc.ess_tail, mcmc.rhat, mcmc.mcse_mean, mcmc.mcse_sd):
        out = func(x)
        assert out.shape == (2, 3)
        assert np.isnan(out[1, 2]) and np.isfinite(out[0, 0])


def _truncation_bound(draws_per_split_chain: int) -> float:
    """How far Geyer's truncated sum may bias ESS / S: it keeps a few lags whose autocorrelations are noise of
    SD about 1 / sqrt(n) each, so the bias is of order 1 / sqrt(n) (measured: 1.6 % at n = 1,000, 0.6 % at
    10,000, always downward for independent draws)."""
    return 1 / np.sqrt(draws_per_split_chain)


def test_independent_draws_have_ess_near_their_number_and_rhat_near_one():
    # truth, not ArviZ: for iid draws ESS / S -> 1, MCSE of the mean -> 1 / sqrt(S), R-hat -> 1. The means over
    # 100 quantities are allowed 4 of their standard errors plus the truncation bias
    x = np.random.default_rng(11).normal(size=(4, 2000, 100))
    draws, quantities = x.shape[0] * x.shape[1], x.shape[2]
    allowed = _truncation_bound(1000)
    relative_ess = mcmc.ess_bulk(x) / draws
    assert abs(relative_ess.mean() - 1) < allowed + 4 * relative_ess.std(ddof=1) / np.sqrt(quantities)
    scaled_mcse = mcmc.mcse_mean(x) * np.sqrt(draws)
    assert abs(scaled_mcse.mean() - 1) < allowed + 4 * scaled_mcse.std(ddof=1) / np.sqrt(quantities)
    # R-hat: its spread over these quantities is about 3e-4; one chain shifted by half an SD gives about 1.02
    rhat = mcmc.rhat(x)
    assert np.all(np.abs(rhat - 1) < 0.01)
    shifted = x + np.array([0.0, 0.0, 0.0, 0.5])[:, None, None]
    assert np.all(mcmc.rhat(shifted) > 1.01)


def test_ar1_ess_matches_its_closed_form():
    # an AR(1) chain with coefficient phi has integrated autocorrelation time (1 + phi) / (1 - phi); the mean
    # over 40 quantities is allowed 4 of its standard errors plus the truncation bias
    phi = 0.8
    x = _ar1(np.random.default_rng(5), 4, 20000, np.full(40, phi))
    relative = mcmc.ess_mean(x) / x[:, :, 0].size
    allowed = _truncation_bound(10000) * (1 - phi) / (1 + phi) + 4 * relative.std(ddof=1) / np.sqrt(relative.size)
    assert abs(relative.mean() - (1 - phi) / (1 + phi)) < allowed
