"""Checks and small helpers on draws arrays shared by the decision modules."""

from __future__ import annotations

import math
from collections.abc import Mapping

import arviz as az
import numpy as np
import xarray as xr

from bayes_stenosis.decisions.conventions import (
    CELL_DIMS,
    DIRECTIONS,
    MIN_DRAWS_FOR_MCSE,
    SAMPLE_DIMS,
)
from bayes_stenosis.stats.mcmc import mcse_mean


def as_draws(draws: xr.DataArray, name: str) -> xr.DataArray:
    """Check dims/coords/values of a draws array; return it as (chain, draw, time, outcome)."""
    if not isinstance(draws, xr.DataArray):
        raise ValueError(f"{name} must be an xarray.DataArray (got {type(draws).__name__})")
    if "chain" not in draws.dims:
        draws = draws.expand_dims("chain")
    expected = (*SAMPLE_DIMS, *CELL_DIMS)
    if set(draws.dims) != set(expected):
        raise ValueError(f"{name} must have dims {expected} (got {draws.dims})")
    for dim in CELL_DIMS:
        if dim not in draws.coords:
            raise ValueError(f"{name} needs {dim!r} coordinates")
    if draws.sizes["draw"] < 1 or draws.sizes["time"] < 1 or draws.sizes["outcome"] < 1:
        raise ValueError(f"{name} is empty (sizes {dict(draws.sizes)})")
    draws = draws.transpose(*expected)
    if not np.all(np.isfinite(draws.values)):
        raise ValueError(f"{name} holds non-finite draws")
    return draws


def same_cells(a: xr.DataArray, b: xr.DataArray, names: tuple[str, str]) -> xr.DataArray:
    """Return ``b`` reordered to ``a``'s (time, outcome) cells; raise if a cell is missing."""
    try:
        return b.sel(time=a.coords["time"].values, outcome=a.coords["outcome"].values)
    except KeyError as err:
        raise ValueError(f"{names[1]} lacks (time, outcome) cells of {names[0]}: {err}") from None


def paired_draws(delta_natural: xr.DataArray, delta_std: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Delta's draws on both scales, checked: ``delta_std`` on ``delta_natural``'s cells and the same draws."""
    nat = as_draws(delta_natural, "delta_natural")
    std = same_cells(nat, as_draws(delta_std, "delta_std"), ("delta_natural", "delta_std"))
    if std.sizes["chain"] != nat.sizes["chain"] or std.sizes["draw"] != nat.sizes["draw"]:
        raise ValueError("delta_natural and delta_std must hold the same (chain, draw) draws")
    return nat, std


def outcome_names(draws: xr.DataArray) -> list[str]:
    return [str(o) for o in draws.coords["outcome"].values]


def margin_vector(draws: xr.DataArray, margins: Mapping[str, float]) -> xr.DataArray:
    values = []
    for o in outcome_names(draws):
        if o not in margins:
            raise ValueError(f"no equivalence margin for outcome {o!r}")
        m = float(margins[o])
        if not (math.isfinite(m) and m > 0):
            raise ValueError(f"margin for outcome {o!r} must be a positive number (got {margins[o]!r})")
        values.append(m)
    return xr.DataArray(values, dims="outcome", coords={"outcome": draws.coords["outcome"]})


def direction_list(draws: xr.DataArray, direction: Mapping[str, str]) -> list[str]:
    out = []
    for o in outcome_names(draws):
        if o not in direction:
            raise ValueError(f"no direction for outcome {o!r}")
        if direction[o] not in DIRECTIONS:
            raise ValueError(f"direction of outcome {o!r} must be one of {DIRECTIONS} (got {direction[o]!r})")
        out.append(direction[o])
    return out


def new_better_sign(draws: xr.DataArray, direction: Mapping[str, str]) -> xr.DataArray:
    """-1 where lower is better, +1 where higher is better: ``sign * delta > 0`` = new arm better."""
    signs = [-1.0 if d == "lower_is_better" else 1.0 for d in direction_list(draws, direction)]
    return xr.DataArray(signs, dims="outcome", coords={"outcome": draws.coords["outcome"]})


def mcse_of(draws: xr.DataArray, method: str, prob: float | None = None) -> xr.DataArray:
    """ArviZ's MCSE over (chain, draw) of a float DataArray; NaN with too few draws. The MCSE of the mean
    is computed for every cell at once (:func:`bayes_stenosis.stats.mcmc.mcse_mean`, equal to
    ``az.mcse``), a quantile's by ArviZ."""
    reduced = draws.isel(chain=0, draw=0, drop=True)
    if draws.sizes["draw"] < MIN_DRAWS_FOR_MCSE:
        return xr.full_like(reduced, np.nan, dtype=float)
    if method == "mean":
        values = draws.transpose("chain", "draw", *reduced.dims).values
        return reduced.copy(data=mcse_mean(values))
    kwargs = {"prob": prob} if method == "quantile" else {}
    out = az.mcse(draws.astype(float).to_dataset(name="x"), method=method, **kwargs)["x"]
    return out.transpose(*reduced.dims)


def share_and_mcse(indicator: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Share of draws where ``indicator`` holds, and its MCSE.

    Where the indicator is constant over all draws the MCSE is NaN: the sample has no variation
    to estimate it from, and 0 would claim a certainty the draws cannot give (the share is then a
    bound, see :func:`bayes_stenosis.decisions.probability_text`).
    """
    x = indicator.astype(float)
    prob = x.mean(SAMPLE_DIMS)
    constant = x.max(SAMPLE_DIMS) == x.min(SAMPLE_DIMS)
    mcse = mcse_of(x, "mean").where(~constant)
    return prob, mcse
