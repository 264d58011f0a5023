"""Posterior draws from known normals for the decision tests (imported by them; not a test module).

Draws are independent and seeded, so every probability, quantile and moment has a closed form.
Tolerances are stated in Monte Carlo standard errors (MCSE): an estimate must lie within ``Z`` MCSE
of its closed form.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

MU = {"ODI": -2.0, "RMDQ": 3.0}
SD = {"ODI": 5.0, "RMDQ": 2.0}
MARGINS = {"ODI": 10.0, "RMDQ": 2.5}
SCALE = {"ODI": 16.0, "RMDQ": 4.5}  # natural units per standardised unit
LOWER = {"ODI": "lower_is_better", "RMDQ": "lower_is_better"}
HIGHER = {"ODI": "higher_is_better", "RMDQ": "higher_is_better"}
CHAINS, DRAWS = 4, 5000
N = CHAINS * DRAWS
Z = 4.0  # tolerance in MCSE


def draws_by_cell(values: np.ndarray, times, outcomes) -> xr.DataArray:
    """Draws shaped ``(chain, draw, time, outcome)`` as the decision functions take them."""
    return xr.DataArray(
        values,
        dims=("chain", "draw", "time", "outcome"),
        coords={"time": [float(t) for t in times], "outcome": list(outcomes)},
    )


def normal_draws(seed: int, mu=MU, sd=SD, chains=CHAINS, draws=DRAWS) -> xr.DataArray:
    """Independent N(mu[o], sd[o]) draws, one time (week 4), outcomes in ``mu``'s order."""
    rng = np.random.default_rng(seed)
    values = np.stack([rng.normal(mu[o], sd[o], size=(chains, draws, 1)) for o in mu], axis=-1)
    return draws_by_cell(values, [4.0], list(mu))


def standardised(delta: xr.DataArray) -> xr.DataArray:
    """``delta`` in standardised units: divided by each outcome's :data:`SCALE`."""
    scale = xr.DataArray(
        [SCALE[str(o)] for o in delta.outcome.values], dims="outcome", coords={"outcome": delta.outcome}
    )
    return delta / scale
