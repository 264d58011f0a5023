"""Fixtures shared by the decision tests."""

from __future__ import annotations

import pytest
import xarray as xr

from tests.decisions.known_normals import normal_draws


@pytest.fixture(scope="module")
def delta() -> xr.DataArray:
    """Known-normal draws (:data:`~tests.decisions.known_normals.MU`, ``SD``), seed 1; made once per module."""
    return normal_draws(seed=1)
