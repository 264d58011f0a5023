"""Margin curves: P(|delta| < m) over a grid of margins, from 0 to a multiple of the study margin."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from bayes_stenosis.decisions.draws import (
    as_draws,
    margin_vector,
    outcome_names,
    share_and_mcse,
)


def _margin_grid(n_grid: int, max_multiple: float) -> np.ndarray:
    """``n_grid`` evenly spaced multiples from 0 to ``max_multiple``, with exactly 1.0 on it."""
    grid = np.linspace(0.0, max_multiple, n_grid)
    nearest = int(np.argmin(np.abs(grid - 1.0)))
    if np.isclose(grid[nearest], 1.0, rtol=0, atol=1e-9):
        grid[nearest] = 1.0
    else:
        grid = np.sort(np.r_[grid, 1.0])
    return grid


def margin_curves(
    delta_natural: xr.DataArray,
    margins: Mapping[str, float],
    n_grid: int = 41,
    max_multiple: float = 2.0,
) -> pd.DataFrame:
    """P(|delta| < k m) as the margin varies, per (time, outcome).

    Parameters
    ----------
    delta_natural
        Posterior draws of delta, natural units, dims ``("chain", "draw", "time", "outcome")``.
    margins
        ``outcome -> default margin m > 0``.
    n_grid
        Number of evenly spaced multiples k from 0 to ``max_multiple`` (at least 2). The multiple
        1.0 is always on the grid exactly: it replaces the nearest grid point when that point is
        1.0 up to rounding, and is added otherwise (then there are ``n_grid + 1`` points).
    max_multiple
        Largest multiple of the default margin (> 0).

    Returns
    -------
    pandas.DataFrame
        Long format, columns ``time, outcome, margin_multiple, margin, prob_equivalence, mcse,
        default_margin`` where ``margin = margin_multiple * m``, ``mcse`` is the MCSE of
        ``prob_equivalence`` (0 where the indicator is constant, e.g. at multiple 0), and
        ``default_margin`` is True only on the row with ``margin_multiple == 1.0``.
    """
    if int(n_grid) != n_grid or n_grid < 2:
        raise ValueError(f"n_grid must be an integer >= 2 (got {n_grid!r})")
    if not (math.isfinite(max_multiple) and max_multiple > 0):
        raise ValueError(f"max_multiple must be a positive number (got {max_multiple!r})")
    post = as_draws(delta_natural, "delta_natural")
    margin = margin_vector(post, margins)
    multiples = _margin_grid(int(n_grid), float(max_multiple))
    grid = xr.DataArray(multiples, dims="margin_multiple")
    frames = []
    for i, t in enumerate(post.coords["time"].values.astype(float)):
        for j, o in enumerate(outcome_names(post)):
            m0 = float(margin.values[j])
            cell = abs(post.isel(time=i, outcome=j, drop=True))
            prob, mcse = share_and_mcse(cell < grid * m0)
            frames.append(
                pd.DataFrame(
                    {
                        "time": float(t),
                        "outcome": o,
                        "margin_multiple": multiples,
                        "margin": multiples * m0,
                        "prob_equivalence": prob.values.astype(float),
                        "mcse": mcse.values.astype(float),
                        "default_margin": multiples == 1.0,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)
