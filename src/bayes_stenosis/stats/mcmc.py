"""Convergence statistics of MCMC draws for many quantities at once.

Rank-normalised split R-hat, bulk and tail effective sample size (ESS), ESS of the mean, and the Monte Carlo
standard error (MCSE) of the mean and of the SD, as defined by Vehtari, Gelman, Simpson, Carpenter and Bürkner
(2021), "Rank-normalization, folding, and localization: an improved R-hat for assessing convergence of MCMC",
Bayesian Analysis 16(2):667-718, with the arithmetic of ArviZ 0.23 (``az.rhat``, ``az.ess``, ``az.mcse``,
``az.summary``).

Why not ArviZ itself: ArviZ computes these one quantity at a time in Python (rank, FFT and Geyer's sequence per
quantity). The flagship's 214 posterior quantities, its decision indicators and its statement checks took about
1.5 s of every fit that way (a third of a sweep fit outside sampling); the same numbers now take about 0.6 s. Here
each step is one numpy call over every quantity (ranks with one ``scipy.stats.rankdata`` call, the
autocovariances with one batched FFT, Geyer's initial positive and monotone sequences as array operations).
``tests/stats/test_mcmc.py`` checks equality with ArviZ to 1e-9 relative, including constant, binary, short
and strongly autocorrelated draws.

Every function takes draws of shape ``(chain, draw, *cell)`` and returns an array of shape ``cell`` (NaN where
the statistic is undefined: any NaN draw, fewer than 4 draws, or for R-hat fewer than 2 chains). A constant
quantity has ESS = its number of draws and R-hat NaN, as in ArviZ, and MCSEs of exactly 0, where ArviZ's are
rounding noise (about 1e-9) or NaN.

Notation, for split chains :math:`m = 1..M` of :math:`n` draws each (each chain cut in halves): with
:math:`\\bar\\theta_m` and :math:`s_m^2` the chain means and variances,

.. math::

    W = \\frac{1}{M}\\sum_m s_m^2,\\quad B = \\frac{n}{M-1}\\sum_m (\\bar\\theta_m - \\bar\\theta)^2,\\quad
    \\hat R = \\sqrt{\\frac{(n-1)/n\\, W + B/n}{W}}

computed on rank-normalised draws :math:`z = \\Phi^{-1}((r - 3/8)/(S + 1/4))` (:math:`r` the average rank among
all :math:`S` draws) and on the rank-normalised folded draws :math:`|\\theta - \\mathrm{median}(\\theta)|`, the
larger of the two. ESS is :math:`S / \\hat\\tau` with :math:`\\hat\\tau = -1 + 2\\sum_{t} \\hat\\rho_t` summed
over Geyer's initial positive and monotone sequence of autocorrelations
:math:`\\hat\\rho_t = 1 - (W - \\bar C_t)/\\widehat{\\mathrm{var}}^+`; bulk ESS on :math:`z`, tail ESS the smaller
of the ESS of the indicators :math:`\\theta \\le q_{0.05}` and :math:`\\theta \\le q_{0.95}`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, special, stats

#: Fewer draws per chain than this: no ESS, MCSE or R-hat (ArviZ's minimum).
MIN_DRAWS = 4

#: Columns per batch of the FFT: bounds the memory of the autocovariances of many quantities.
_BATCH_COLUMNS = 256


@dataclass(frozen=True)
class ConvergenceSummary:
    """Per quantity, arrays of the cell shape: what ``az.summary(kind="all")`` reports, except its HDI."""

    mean: np.ndarray
    sd: np.ndarray
    mcse_mean: np.ndarray
    mcse_sd: np.ndarray
    ess_bulk: np.ndarray
    ess_tail: np.ndarray
    r_hat: np.ndarray


def _columns(draws: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """``(K, chain, draw)`` float draws, contiguous along the draws, and the cell shape of ``(chain, draw,
    *cell)`` draws: every sort and FFT then runs along contiguous memory."""
    x = np.asarray(draws, dtype=float)
    if x.ndim < 2:
        raise ValueError(f"draws must have shape (chain, draw, ...), got {x.shape}")
    cell = x.shape[2:]
    return np.ascontiguousarray(np.moveaxis(x.reshape(x.shape[0], x.shape[1], -1), 2, 0)), cell


def _valid(x: np.ndarray, min_chains: int = 1) -> np.ndarray:
    """Columns with no NaN draw and enough chains and draws for the statistic."""
    enough = x.shape[1] >= min_chains and x.shape[2] >= MIN_DRAWS
    return ~np.isnan(x).any(axis=(1, 2)) & enough


def _constant(x: np.ndarray) -> np.ndarray:
    """Columns whose draws never vary (ArviZ's test: a range below float resolution)."""
    return (x.max(axis=(1, 2)) - x.min(axis=(1, 2))) < np.finfo(float).resolution


def _split_chains(x: np.ndarray) -> np.ndarray:
    """Each chain's first and last halves as separate chains (the middle draw of an odd count left out)."""
    n = x.shape[2]
    half = n // 2
    return np.concatenate([x[:, :, :half], x[:, :, n - half :]], axis=1)


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Rank normalisation per column: average ranks over all draws, Blom's offset 3/8, the normal quantile."""
    k, chains, n = x.shape
    ranks = stats.rankdata(x.reshape(k, chains * n), method="average", axis=1)
    return special.ndtri((ranks - 3 / 8) / (chains * n - 2 * 3 / 8 + 1)).reshape(k, chains, n)


def _rhat(x: np.ndarray) -> np.ndarray:
    """The classic R-hat of each column of ``(K, chain, draw)`` draws."""
    n = x.shape[2]
    between = n * np.var(x.mean(axis=2), axis=1, ddof=1)
    within = np.var(x, axis=2, ddof=1).mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance of each chain at every lag, by FFT along the draws (ArviZ's, batched)."""
    n = x.shape[2]
    centred = x - x.mean(axis=2, keepdims=True)
    size = fft.next_fast_len(2 * n)
    spectrum = np.fft.rfft(centred, n=size, axis=2)
    spectrum *= np.conjugate(spectrum)
    return np.fft.irfft(spectrum, n=size, axis=2)[:, :, :n] / n


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of each column of ``(K, chain, draw)`` draws: Geyer's initial positive and monotone sequences.

    ArviZ walks the autocorrelations pair by pair; the same result in array form: pairs
    :math:`P_j = \\hat\\rho_{2j} + \\hat\\rho_{2j+1}` are taken up to the first non-positive one (or the last
    pair whose lags fit), the monotone sequence is their running minimum, and the first lag past them counts
    once, when positive.
    """
    k = x.shape[0]
    out = np.empty(k)
    for start in range(0, k, _BATCH_COLUMNS):
        out[start : start + _BATCH_COLUMNS] = _ess_batch(x[start : start + _BATCH_COLUMNS])
    return out


def _ess_batch(x: np.ndarray) -> np.ndarray:
    k, chains, n = x.shape
    size = chains * n
    acov = _autocov(x)
    mean_var = acov[:, :, 0].mean(axis=1) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if chains > 1:
        var_plus = var_plus + np.var(x.mean(axis=2), axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = 1.0 - (mean_var[:, None] - acov.mean(axis=1)) / var_plus[:, None]  # (K, lag)
    rho[:, 0] = 1.0
    last_pair = (n - 1) // 2 - 1  # the last pair (2j, 2j + 1) ArviZ's loop reaches: 2j - 1 < n - 3
    if last_pair < 1:
        tau = np.zeros(k)  # no pair beyond (rho_0, rho_1): tau = -1 + rho_0
    else:
        pairs = rho[:, 0 : 2 * last_pair + 2 : 2] + rho[:, 1 : 2 * last_pair + 2 : 2]  # P_0 .. P_last
        nonpositive = ~(pairs > 0)
        first = np.where(nonpositive.any(axis=1), nonpositive.argmax(axis=1), last_pair + 1)
        stop = np.minimum(first, last_pair)  # the last pair looked at
        monotone = np.minimum.accumulate(pairs, axis=1)  # NaN only where constant or NaN draws: replaced below
        kept = np.arange(last_pair + 1)[None, :] < stop[:, None]
        rows = np.arange(k)
        even = rho[rows, 2 * stop]
        # the lag after the sequence: stored if its pair was kept (>= 0), else only a positive even lag
        after = np.where((stop == 0) | (pairs[rows, stop] >= 0) | (even > 0), even, 0.0)
        tau = -1.0 + 2.0 * np.where(kept, monotone, 0.0).sum(axis=1) + after
    floor = 1 / np.log10(size)
    tau = np.where(floor > tau, floor, tau)
    return np.where(_constant(x), float(size), size / tau)


def _finish(values: np.ndarray, valid: np.ndarray, cell: tuple[int, ...]) -> np.ndarray:
    return np.where(valid, values, np.nan).reshape(cell)


def ess_bulk(draws: np.ndarray) -> np.ndarray:
    """Bulk ESS: the ESS of the rank-normalised split chains (``az.ess(method="bulk")``)."""
    x, cell = _columns(draws)
    return _finish(_ess(_z_scale(_split_chains(x))), _valid(x), cell)


def ess_mean(draws: np.ndarray) -> np.ndarray:
    """ESS of the mean: the ESS of the split chains (``az.ess(method="mean")``)."""
    x, cell = _columns(draws)
    return _finish(_ess(_split_chains(x)), _valid(x), cell)


def _ess_tail(x: np.ndarray) -> np.ndarray:
    low, high = np.quantile(x.reshape(x.shape[0], -1), [0.05, 0.95], axis=1)
    ess_low = _ess(_split_chains((x <= low[:, None, None]).astype(float)))
    ess_high = _ess(_split_chains((x <= high[:, None, None]).astype(float)))
    return np.where(ess_high < ess_low, ess_high, ess_low)


def ess_tail(draws: np.ndarray) -> np.ndarray:
    """Tail ESS: the smaller ESS of the indicators of the 5 % and 95 % quantiles (``az.ess(method="tail")``)."""
    x, cell = _columns(draws)
    return _finish(_ess_tail(x), _valid(x), cell)


def _rhat_rank(split: np.ndarray, z_split: np.ndarray | None = None) -> np.ndarray:
    bulk = _rhat(_z_scale(split) if z_split is None else z_split)
    folded = np.abs(split - np.median(split.reshape(split.shape[0], -1), axis=1)[:, None, None])
    tail = _rhat(_z_scale(folded))
    return np.where(tail > bulk, tail, bulk)


def rhat(draws: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat, the larger of bulk and folded (``az.rhat``; ``method="rank"``)."""
    x, cell = _columns(draws)
    return _finish(_rhat_rank(_split_chains(x)), _valid(x, min_chains=2), cell)


def _mcse_mean(x: np.ndarray) -> np.ndarray:
    centred_sq = (x - x.mean(axis=(1, 2), keepdims=True)) ** 2
    variance = centred_sq.sum(axis=(1, 2)) / (centred_sq.shape[1] * centred_sq.shape[2] - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mcse = np.sqrt(variance / _ess(_split_chains(x)))
    return np.where(_constant(x), 0.0, mcse)  # exactly 0, where ArviZ gives rounding noise or NaN


def mcse_mean(draws: np.ndarray) -> np.ndarray:
    """MCSE of the mean: SD / sqrt(ESS of the mean) (``az.mcse(method="mean")``)."""
    x, cell = _columns(draws)
    return _finish(_mcse_mean(x), _valid(x), cell)


def _mcse_sd(x: np.ndarray) -> np.ndarray:
    centred_sq = (x - x.mean(axis=(1, 2), keepdims=True)) ** 2
    second = centred_sq.mean(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        variance_of_variance = ((centred_sq**2).mean(axis=(1, 2)) - second**2) / _ess(_split_chains(centred_sq))
        mcse = np.sqrt(variance_of_variance / second / 4)
    return np.where(_constant(x), 0.0, mcse)


def mcse_sd(draws: np.ndarray) -> np.ndarray:
    """MCSE of the SD, by the delta method on the variance (``az.mcse(method="sd")``)."""
    x, cell = _columns(draws)
    return _finish(_mcse_sd(x), _valid(x), cell)


def convergence_summary(draws: np.ndarray) -> ConvergenceSummary:
    """Mean, SD (ddof 1), MCSE of mean and SD, bulk and tail ESS and R-hat of every cell, at once."""
    x, cell = _columns(draws)
    valid = _valid(x)
    split = _split_chains(x)
    z_split = _z_scale(split)  # shared by bulk ESS and R-hat
    return ConvergenceSummary(
        mean=x.mean(axis=(1, 2)).reshape(cell),
        sd=np.std(x.reshape(x.shape[0], -1), axis=1, ddof=1).reshape(cell),
        mcse_mean=_finish(_mcse_mean(x), valid, cell),
        mcse_sd=_finish(_mcse_sd(x), valid, cell),
        ess_bulk=_finish(_ess(z_split), valid, cell),
        ess_tail=_finish(_ess_tail(x), valid, cell),
        r_hat=_finish(_rhat_rank(split, z_split), _valid(x, min_chains=2), cell),
    )
