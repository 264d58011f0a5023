"""Normal approximation of the contrasts for meta-analysts (``approximations.json``) and its schema check."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

from bayes_stenosis.decisions.draws import (
    as_draws,
    margin_vector,
    outcome_names,
    same_cells,
)

APPROXIMATION_SCHEMA: dict[str, Any] = {
    "schema_version": 1,
    # key -> type tag (see _TYPE_CHECKS); every required key must be present
    "required": {
        "schema_version": "int",
        "names": "list[str]",
        "cells": "list[cell]",
        "units": "list[str]",
        "margins": "list[positive]",
        "n_draws": "int",
        "mean_natural": "list[number]",
        "covariance_natural": "matrix",
        "mean_std": "list[number]",
        "covariance_std": "matrix",
        "marginal_fit": "list[fit]",
    },
    # optional keys; no other keys are allowed
    "optional": {"description": "str", "metadata": "dict"},
    # lists that hold one entry per name, in the same order
    "per_contrast": ("cells", "units", "margins", "mean_natural", "mean_std", "marginal_fit"),
    # square (len(names) x len(names)), symmetric, positive semi-definite
    "covariances": ("covariance_natural", "covariance_std"),
    "cell_keys": {"time": "number", "outcome": "str"},
    # fit measures are numbers, or null when undefined (constant draws)
    "marginal_fit_keys": {
        "name": "str",
        "skewness": "number|null",
        "excess_kurtosis": "number|null",
        "ks_distance": "number|null",
        "max_quantile_error_sd": "number|null",
    },
}


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _is_matrix(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(r, list) and all(_is_number(v) for v in r) for r in x)


def _check_keys(entry: Any, spec: Mapping[str, str], what: str) -> None:
    if not isinstance(entry, dict):
        raise ValueError(f"{what} must be an object (got {type(entry).__name__})")
    missing = [k for k in spec if k not in entry]
    if missing:
        raise ValueError(f"{what} is missing key(s) {missing}")
    extra = sorted(set(entry) - set(spec))
    if extra:
        raise ValueError(f"{what} has unknown key(s) {extra}")
    for key, tag in spec.items():
        if not _TYPE_CHECKS[tag](entry[key]):
            raise ValueError(f"{what}[{key!r}] must be {tag} (got {entry[key]!r})")


def _check_cell(x: Any) -> bool:
    _check_keys(x, APPROXIMATION_SCHEMA["cell_keys"], "cells entry")
    return True


def _check_fit(x: Any) -> bool:
    _check_keys(x, APPROXIMATION_SCHEMA["marginal_fit_keys"], "marginal_fit entry")
    return True


_TYPE_CHECKS = {
    "int": lambda x: isinstance(x, int) and not isinstance(x, bool),
    "str": lambda x: isinstance(x, str),
    "dict": lambda x: isinstance(x, dict),
    "number": _is_number,
    "number|null": lambda x: x is None or _is_number(x),
    "matrix": _is_matrix,
    "list[str]": lambda x: isinstance(x, list) and all(isinstance(v, str) for v in x),
    "list[number]": lambda x: isinstance(x, list) and all(_is_number(v) for v in x),
    "list[positive]": lambda x: isinstance(x, list) and all(_is_number(v) and v > 0 for v in x),
    "list[cell]": lambda x: isinstance(x, list) and all(_check_cell(v) for v in x),
    "list[fit]": lambda x: isinstance(x, list) and all(_check_fit(v) for v in x),
}


def _finite_or_none(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _marginal_fit(name: str, col: np.ndarray) -> dict[str, Any]:
    mu = float(col.mean())
    sd = float(col.std(ddof=1)) if col.size > 1 else 0.0
    if not sd > 0:
        return dict.fromkeys(APPROXIMATION_SCHEMA["marginal_fit_keys"], None) | {"name": name}
    probs = [0.025, 0.5, 0.975]
    quantile_error = np.abs(np.quantile(col, probs) - stats.norm.ppf(probs, mu, sd)) / sd
    return {
        "name": name,
        "skewness": _finite_or_none(stats.skew(col)),
        "excess_kurtosis": _finite_or_none(stats.kurtosis(col, fisher=True)),
        "ks_distance": _finite_or_none(stats.kstest(col, "norm", args=(mu, sd)).statistic),
        "max_quantile_error_sd": _finite_or_none(quantile_error.max()),
    }


def normal_approximation(
    delta_natural: xr.DataArray,
    delta_std: xr.DataArray,
    margins: Mapping[str, float],
    units: Mapping[str, str],
) -> dict:
    """Multivariate normal approximation of all contrasts, for meta-analysts.

    Parameters
    ----------
    delta_natural, delta_std
        Posterior draws of delta in natural units and on the standardised scale, dims
        ``("chain", "draw", "time", "outcome")``, same cells and draws (at least 2 in all).
    margins
        ``outcome -> m`` (natural units), reported alongside each contrast.
    units
        ``outcome -> unit text`` (e.g. ``"mm"``, ``"points"``).

    Returns
    -------
    dict
        Plain JSON-serialisable content (lists, floats, str, int) matching
        :data:`APPROXIMATION_SCHEMA`:

        - ``schema_version`` (1), ``description``, ``n_draws`` (total draws used);
        - ``names``: ``"delta[time=4,outcome=ODI]"``, time-major order; ``cells``: the matching
          ``{"time": 4.0, "outcome": "ODI"}``; ``units`` and ``margins`` per name;
        - ``mean_natural``, ``covariance_natural``, ``mean_std``, ``covariance_std``: sample mean
          vector and covariance matrix (ddof=1) of the draws, in ``names`` order;
        - ``marginal_fit``: per name, ``skewness``, ``excess_kurtosis`` (0 for a normal),
          ``ks_distance`` (Kolmogorov-Smirnov sup distance between the draws' empirical CDF and
          the fitted normal's CDF) and ``max_quantile_error_sd`` (largest |draw quantile - fitted
          normal quantile| at 2.5, 50 and 97.5 %, in posterior SDs); null where undefined.

        Callers may add a ``"metadata"`` dict (study, run, ...).
    """
    nat = as_draws(delta_natural, "delta_natural")
    std = same_cells(nat, as_draws(delta_std, "delta_std"), ("delta_natural", "delta_std"))
    if std.sizes["chain"] != nat.sizes["chain"] or std.sizes["draw"] != nat.sizes["draw"]:
        raise ValueError("delta_natural and delta_std must hold the same (chain, draw) draws")
    n_draws = nat.sizes["chain"] * nat.sizes["draw"]
    if n_draws < 2:
        raise ValueError("a normal approximation needs at least 2 draws")
    margin = margin_vector(nat, margins)
    times = nat.coords["time"].values.astype(float)
    outcomes = outcome_names(nat)
    missing_units = [o for o in outcomes if o not in units]
    if missing_units:
        raise ValueError(f"no unit for outcome(s) {missing_units}")
    x = nat.values.reshape(n_draws, -1)  # columns in (time, outcome) time-major order
    z = std.values.reshape(n_draws, -1)
    names, cells, unit_list, margin_list = [], [], [], []
    for t in times:
        for j, o in enumerate(outcomes):
            names.append(f"delta[time={t:g},outcome={o}]")
            cells.append({"time": float(t), "outcome": o})
            unit_list.append(str(units[o]))
            margin_list.append(float(margin.values[j]))
    k = len(names)
    return {
        "schema_version": APPROXIMATION_SCHEMA["schema_version"],
        "description": (
            "Multivariate normal approximation of the posterior of delta = change from baseline in the new arm "
            "minus change from baseline in the reference arm; natural units and standardised scale"
        ),
        "n_draws": int(n_draws),
        "names": names,
        "cells": cells,
        "units": unit_list,
        "margins": margin_list,
        "mean_natural": [float(v) for v in x.mean(axis=0)],
        "covariance_natural": np.cov(x, rowvar=False, ddof=1).reshape(k, k).astype(float).tolist(),
        "mean_std": [float(v) for v in z.mean(axis=0)],
        "covariance_std": np.cov(z, rowvar=False, ddof=1).reshape(k, k).astype(float).tolist(),
        "marginal_fit": [_marginal_fit(name, x[:, c]) for c, name in enumerate(names)],
    }


def validate_approximation(obj: dict) -> None:
    """Check a normal-approximation dict against :data:`APPROXIMATION_SCHEMA`.

    The schema: required keys ``schema_version`` (int, 1), ``names`` (list of str),
    ``cells`` (list of ``{"time": number, "outcome": str}``), ``units`` (list of str),
    ``margins`` (list of positive numbers), ``n_draws`` (int), ``mean_natural`` and ``mean_std``
    (lists of finite numbers), ``covariance_natural`` and ``covariance_std`` (lists of lists of
    finite numbers: square, ``len(names)`` x ``len(names)``, symmetric and positive
    semi-definite, up to rounding), ``marginal_fit`` (list of objects with ``name`` equal to the
    matching entry of ``names`` and ``skewness``, ``excess_kurtosis``, ``ks_distance``,
    ``max_quantile_error_sd``, each a number or null). Every per-contrast list has one entry per
    name. Optional keys: ``description`` (str) and ``metadata`` (dict, free-form, added by
    callers). No other keys. Everything except ``metadata`` must be strict JSON (no NaN).

    Parameters
    ----------
    obj
        The dict (e.g. read back from ``approximations.json``).

    Raises
    ------
    ValueError
        Naming the first key that does not match.
    """
    schema = APPROXIMATION_SCHEMA
    if not isinstance(obj, dict):
        raise ValueError(f"normal approximation must be a JSON object (got {type(obj).__name__})")
    missing = [k for k in schema["required"] if k not in obj]
    if missing:
        raise ValueError(f"normal approximation is missing required key(s) {missing}")
    extra = sorted(set(obj) - set(schema["required"]) - set(schema["optional"]))
    if extra:
        raise ValueError(f"normal approximation has unknown key(s) {extra}")
    for key, tag in (schema["required"] | schema["optional"]).items():
        if key in obj and not _TYPE_CHECKS[tag](obj[key]):
            raise ValueError(f"normal approximation key {key!r} must be {tag}")
    if obj["schema_version"] != schema["schema_version"]:
        raise ValueError(f"unsupported schema_version {obj['schema_version']!r} (expected {schema['schema_version']})")
    n = len(obj["names"])
    if n == 0:
        raise ValueError("normal approximation has no contrasts ('names' is empty)")
    if len(set(obj["names"])) != n:
        raise ValueError("'names' must be unique")
    for key in schema["per_contrast"]:
        if len(obj[key]) != n:
            raise ValueError(f"{key!r} has length {len(obj[key])}, expected {n} (one per name)")
    for name, fit in zip(obj["names"], obj["marginal_fit"], strict=True):
        if fit["name"] != name:
            raise ValueError(f"marginal_fit entry {fit['name']!r} does not match name {name!r}")
    for key in schema["covariances"]:
        rows = obj[key]
        if len(rows) != n or any(len(r) != n for r in rows):
            raise ValueError(f"{key!r} must be a square {n} x {n} matrix matching the length of 'names'")
        cov = np.asarray(rows, dtype=float)
        scale = max(1.0, float(np.abs(cov).max()))
        if not np.allclose(cov, cov.T, rtol=0, atol=1e-9 * scale):
            raise ValueError(f"{key!r} is not symmetric")
        if np.linalg.eigvalsh(cov).min() < -1e-9 * scale:
            raise ValueError(f"{key!r} is not positive semi-definite")
    content = {k: v for k, v in obj.items() if k != "metadata"}
    try:
        json.dumps(content, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"normal approximation is not strict JSON: {err}") from None
