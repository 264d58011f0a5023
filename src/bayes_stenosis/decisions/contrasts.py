"""Posterior summaries of each treatment difference: mean, SD, interval (one convention) and their MCSE."""

from __future__ import annotations

from collections.abc import Mapping

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayes_stenosis.decisions.conventions import (
    CELL_DIMS,
    MIN_DRAWS_FOR_MCSE,
    SAMPLE_DIMS,
    IntervalSpec,
)
from bayes_stenosis.decisions.draws import (
    direction_list,
    mcse_of,
    outcome_names,
    paired_draws,
)
from bayes_stenosis.stats import mcmc


def _interval_and_mcse(draws: xr.DataArray, interval: IntervalSpec) -> dict[str, np.ndarray]:
    """Interval endpoints over (chain, draw) and the MCSE of each endpoint, arrays (time, outcome).

    ETI: endpoints are the (1 -+ prob)/2 quantiles; their MCSE is ArviZ's quantile MCSE at those
    probabilities. HDI: endpoints from ``az.hdi``; their MCSE is approximated by ArviZ's quantile
    MCSE at each endpoint's empirical CDF value, i.e. the endpoint is treated as a quantile of
    fixed probability. This ignores the extra variation from estimating where the shortest
    interval lies, so for an HDI the reported MCSE understates the Monte Carlo error (for normal
    draws, 2 x 1000, the spread of HDI endpoints over replicate samples was about 1.5 times it).
    """
    if interval.kind == "eti":
        a = (1.0 - interval.prob) / 2.0
        lower = draws.quantile(a, dim=SAMPLE_DIMS).drop_vars("quantile")
        upper = draws.quantile(1.0 - a, dim=SAMPLE_DIMS).drop_vars("quantile")
        mcse_lower = mcse_of(draws, "quantile", prob=a)
        mcse_upper = mcse_of(draws, "quantile", prob=1.0 - a)
    else:
        hdi = az.hdi(draws.to_dataset(name="x"), hdi_prob=interval.prob)["x"]
        lower = hdi.sel(hdi="lower", drop=True)
        upper = hdi.sel(hdi="higher", drop=True)
        n = draws.sizes["chain"] * draws.sizes["draw"]
        cdf_lower = (draws <= lower).mean(SAMPLE_DIMS)
        cdf_upper = (draws <= upper).mean(SAMPLE_DIMS)
        mcse_lower = xr.full_like(lower, np.nan, dtype=float)
        mcse_upper = xr.full_like(upper, np.nan, dtype=float)
        if draws.sizes["draw"] >= MIN_DRAWS_FOR_MCSE:
            clip = (1.0 / n, 1.0 - 1.0 / n)
            for i in range(draws.sizes["time"]):
                for j in range(draws.sizes["outcome"]):
                    cell = draws.isel(time=[i], outcome=[j])
                    for cdf, target in ((cdf_lower, mcse_lower), (cdf_upper, mcse_upper)):
                        p = float(np.clip(cdf.values[i, j], *clip))
                        target[i, j] = float(mcse_of(cell, "quantile", prob=p).values[0, 0])
    return {
        "lower": lower.transpose(*CELL_DIMS).values,
        "upper": upper.transpose(*CELL_DIMS).values,
        "mcse_lower": mcse_lower.transpose(*CELL_DIMS).values,
        "mcse_upper": mcse_upper.transpose(*CELL_DIMS).values,
    }


def summarise_contrasts(
    delta_natural: xr.DataArray,
    delta_std: xr.DataArray,
    interval: IntervalSpec,
    direction: Mapping[str, str],
    arm_labels: tuple[str, str],
) -> pd.DataFrame:
    """Posterior summary of delta, one row per (time, outcome), natural and standardised scale.

    Parameters
    ----------
    delta_natural, delta_std
        Draws of delta in natural units and on the standardised scale, dims
        ``("chain", "draw", "time", "outcome")`` with the same cells.
    interval
        The interval convention (kind and probability).
    direction
        ``outcome -> "lower_is_better" | "higher_is_better"``.
    arm_labels
        ``(new_label, reference_label)``; names the arm a negative delta favours.

    Returns
    -------
    pandas.DataFrame
        Columns ``time, outcome, direction, favours_if_negative,
        mean_natural, sd_natural, median_natural, lower_natural, upper_natural,
        mcse_mean_natural, mcse_median_natural, mcse_lower_natural, mcse_upper_natural,
        mean_std, sd_std, median_std, lower_std, upper_std,
        mcse_mean_std, mcse_lower_std, mcse_upper_std,
        ess_bulk, r_hat, interval_kind, interval_prob, interval_label, contrast``.

    Notes
    -----
    ``sd_*`` uses ddof=1. MCSEs are ArviZ's: ``method="mean"`` for the mean,
    ``method="quantile"`` for the median and the interval endpoints. For an equal-tailed interval
    the endpoint MCSE is the quantile MCSE at (1 -+ prob)/2. For a highest-density interval there
    is no ArviZ MCSE; the quantile MCSE at the endpoint's empirical CDF value is used, which
    treats the endpoint as a fixed-probability quantile and ignores the variation in where the
    shortest interval lies, so it understates the Monte Carlo error (for normal draws, 2 chains x
    1000, the replicate-to-replicate SD of the 95% HDI endpoints was about 1.5 times the reported
    value; for the ETI endpoints the reported MCSE matched the replicate SD).
    ``ess_bulk`` and ``r_hat`` are ``az.ess(method="bulk")`` and ``az.rhat`` (computed by
    :mod:`bayes_stenosis.stats.mcmc`, every cell at once) of delta (natural
    scale); R-hat is NaN with a single chain, ESS and MCSEs are NaN with fewer than 4 draws per
    chain.
    """
    nat, std = paired_draws(delta_natural, delta_std)
    directions = direction_list(nat, direction)
    if len(arm_labels) != 2:
        raise ValueError(f"arm_labels must be (new_label, reference_label) (got {arm_labels!r})")
    frame = _cell_rows(nat, directions, arm_labels)
    summaries = _scale_summary(nat, interval, "natural", median_mcse=True)
    summaries |= _scale_summary(std, interval, "std", median_mcse=False)
    for name, values in summaries.items():
        frame[name] = values
    frame["ess_bulk"], frame["r_hat"] = _ess_and_rhat(nat)
    frame["interval_kind"] = interval.kind
    frame["interval_prob"] = float(interval.prob)
    frame["interval_label"] = interval.label
    frame["contrast"] = "new minus reference, change from baseline"
    return frame


def _cellwise(x: xr.DataArray) -> np.ndarray:
    """The values of a (time, outcome) array, flat in time-major order (the table's row order)."""
    return x.transpose(*CELL_DIMS).values.ravel()


def _cell_rows(nat: xr.DataArray, directions: list[str], arm_labels: tuple[str, str]) -> pd.DataFrame:
    """One row per (time, outcome), time-major: the cell, its direction and the arm a negative delta favours."""
    new_label, ref_label = (str(label) for label in arm_labels)
    times = nat.coords["time"].values.astype(float)
    outcomes = outcome_names(nat)
    favours = [new_label if d == "lower_is_better" else ref_label for d in directions]
    return pd.DataFrame(
        {
            "time": np.repeat(times, len(outcomes)),
            "outcome": np.tile(np.array(outcomes, dtype=object), len(times)),
            "direction": np.tile(np.array(directions, dtype=object), len(times)),
            "favours_if_negative": np.tile(np.array(favours, dtype=object), len(times)),
        }
    )


def _scale_summary(draws: xr.DataArray, interval: IntervalSpec, scale: str, *, median_mcse: bool) -> dict:
    """Mean, SD, median, interval and their MCSEs on one scale, per cell, in the table's column order
    (``mean_<scale>``, ...); the median's MCSE only when ``median_mcse``."""
    iv = _interval_and_mcse(draws, interval)
    columns = {
        "mean": _cellwise(draws.mean(SAMPLE_DIMS)),
        "sd": _cellwise(draws.std(SAMPLE_DIMS, ddof=1)),
        "median": _cellwise(draws.median(SAMPLE_DIMS)),
        "lower": iv["lower"].ravel(),
        "upper": iv["upper"].ravel(),
        "mcse_mean": _cellwise(mcse_of(draws, "mean")),
    }
    if median_mcse:
        columns["mcse_median"] = _cellwise(mcse_of(draws, "quantile", prob=0.5))
    columns["mcse_lower"] = iv["mcse_lower"].ravel()
    columns["mcse_upper"] = iv["mcse_upper"].ravel()
    return {f"{name}_{scale}": np.asarray(values, dtype=float) for name, values in columns.items()}


def _ess_and_rhat(nat: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """Bulk ESS and R-hat of each cell's draws; NaN where undefined (R-hat: one chain; both: too few draws)."""
    ess = rhat = np.full(nat.sizes["time"] * nat.sizes["outcome"], np.nan)
    if nat.sizes["draw"] >= MIN_DRAWS_FOR_MCSE:
        cells = nat.transpose("chain", "draw", *CELL_DIMS).values  # (chain, draw, time, outcome): time-major
        ess = mcmc.ess_bulk(cells).ravel()
        if nat.sizes["chain"] >= 2:
            rhat = mcmc.rhat(cells).ravel()
    return ess.astype(float), rhat.astype(float)
