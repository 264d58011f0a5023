"""Normal approximation of the contrasts for meta-analysts (``approximations.json``) and its schema check.

The file says what it approximates: top-level ``mean_*`` / ``covariance_*`` are the POSTERIOR (they
include the run's prior, named in ``prior``); ``likelihood`` holds the same with the prior divided out
(:mod:`bayes_stenosis.decisions.likelihood`), which is what a meta-analysis with its own prior needs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

from bayes_stenosis.decisions.draws import (
    margin_vector,
    outcome_names,
    paired_draws,
)

APPROXIMATION_SCHEMA: dict[str, Any] = {
    "schema_version": 2,
    # key -> type tag (see _TYPE_CHECKS); every required key must be present
    "required": {
        "schema_version": "int",
        "approximates": "str",
        "description": "str",
        "names": "list[str]",
        "cells": "list[cell]",
        "units": "list[str]",
        "direction": "list[str]",
        "margins": "list[positive]",
        "time_unit": "str",
        "standardising_sds": "list[sd]",
        "prior": "dict",
        "n_draws": "int",
        "mean_natural": "list[number]",
        "covariance_natural": "matrix",
        "mean_std": "list[number]",
        "covariance_std": "matrix",
        "correlation": "matrix",
        "marginal_fit": "list[fit]",
        "likelihood": "dict",
    },
    # optional keys; no other keys are allowed
    "optional": {"metadata": "dict"},
    # lists that hold one entry per name, in the same order
    "per_contrast": ("cells", "units", "direction", "margins", "mean_natural", "mean_std", "marginal_fit"),
    # square (len(names) x len(names)), symmetric, positive semi-definite
    "covariances": ("covariance_natural", "covariance_std", "correlation"),
    "cell_keys": {"time": "number", "outcome": "str"},
    "sd_keys": {"outcome": "str", "sd": "positive", "unit": "str", "source": "str"},
    # fit measures are numbers, or null when undefined (constant draws)
    "marginal_fit_keys": {
        "name": "str",
        "skewness": "number|null",
        "excess_kurtosis": "number|null",
        "ks_distance": "number|null",
        "max_quantile_error_sd": "number|null",
    },
    # the likelihood block: always these keys; with status "ok" also the "likelihood_ok" ones
    "likelihood_keys": {
        "approximates": "str",
        "status": "str",
        "description": "str",
        "method": "str",
        "exact": "bool",
        "notes": "list[str]",
        "prior_normal": "dict",
        "names": "list[str]",
    },
    "likelihood_ok": {
        "mean_natural": "list[number]",
        "covariance_natural": "matrix",
        "se_natural": "list[number]",
        "mean_std": "list[number]",
        "covariance_std": "matrix",
        "correlation": "matrix",
    },
    "likelihood_statuses": ("ok", "not_positive_definite", "not_available"),
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


def _check_sd(x: Any) -> bool:
    _check_keys(x, APPROXIMATION_SCHEMA["sd_keys"], "standardising_sds entry")
    return True


def _check_fit(x: Any) -> bool:
    _check_keys(x, APPROXIMATION_SCHEMA["marginal_fit_keys"], "marginal_fit entry")
    return True


_TYPE_CHECKS = {
    "int": lambda x: isinstance(x, int) and not isinstance(x, bool),
    "bool": lambda x: isinstance(x, bool),
    "positive": lambda x: _is_number(x) and x > 0,
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
    "list[sd]": lambda x: isinstance(x, list) and all(_check_sd(v) for v in x),
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
    """Multivariate normal approximation of the POSTERIOR of all contrasts (it includes the prior).

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
        The posterior part of :data:`APPROXIMATION_SCHEMA` (the run layer adds direction, time unit,
        standardising SDs, the prior, the likelihood and a description):

        - ``schema_version``, ``approximates`` (``"posterior"``), ``n_draws`` (total draws used);
        - ``names``: ``"delta[time=4,outcome=ODI]"``, time-major order; ``cells``: the matching
          ``{"time": 4.0, "outcome": "ODI"}``; ``units`` and ``margins`` per name;
        - ``mean_natural``, ``covariance_natural``, ``mean_std``, ``covariance_std``: sample mean
          vector and covariance matrix (ddof=1) of the draws, in ``names`` order; ``correlation``
          (the same on both scales);
        - ``marginal_fit``: per name, ``skewness``, ``excess_kurtosis`` (0 for a normal),
          ``ks_distance`` (Kolmogorov-Smirnov sup distance between the draws' empirical CDF and
          the fitted normal's CDF) and ``max_quantile_error_sd`` (largest |draw quantile - fitted
          normal quantile| at 2.5, 50 and 97.5 %, in posterior SDs); null where undefined.
    """
    nat, std = paired_draws(delta_natural, delta_std)
    n_draws = nat.sizes["chain"] * nat.sizes["draw"]
    if n_draws < 2:
        raise ValueError("a normal approximation needs at least 2 draws")
    margin = margin_vector(nat, margins)
    outcomes = outcome_names(nat)
    missing_units = [o for o in outcomes if o not in units]
    if missing_units:
        raise ValueError(f"no unit for outcome(s) {missing_units}")
    labels = _cell_labels(nat.coords["time"].values.astype(float), outcomes, units, margin)
    x = nat.values.reshape(n_draws, -1)  # columns in (time, outcome) time-major order
    z = std.values.reshape(n_draws, -1)
    k = len(labels["names"])
    cov = np.cov(x, rowvar=False, ddof=1).reshape(k, k)
    return {
        "schema_version": APPROXIMATION_SCHEMA["schema_version"],
        "approximates": "posterior",
        "n_draws": int(n_draws),
        **labels,
        "mean_natural": [float(v) for v in x.mean(axis=0)],
        "covariance_natural": cov.astype(float).tolist(),
        "mean_std": [float(v) for v in z.mean(axis=0)],
        "covariance_std": np.cov(z, rowvar=False, ddof=1).reshape(k, k).astype(float).tolist(),
        "correlation": correlation_matrix(cov).tolist(),
        "marginal_fit": [_marginal_fit(name, x[:, c]) for c, name in enumerate(labels["names"])],
    }


def _cell_labels(
    times: np.ndarray, outcomes: list[str], units: Mapping[str, str], margin: xr.DataArray
) -> dict[str, list]:
    """``names``, ``cells``, ``units`` and ``margins`` of every (time, outcome) cell, time-major."""
    names, cells, unit_list, margin_list = [], [], [], []
    for t in times:
        for j, o in enumerate(outcomes):
            names.append(f"delta[time={t:g},outcome={o}]")
            cells.append({"time": float(t), "outcome": o})
            unit_list.append(str(units[o]))
            margin_list.append(float(margin.values[j]))
    return {"names": names, "cells": cells, "units": unit_list, "margins": margin_list}


def correlation_matrix(cov: np.ndarray) -> np.ndarray:
    """The correlation matrix of a covariance matrix (a zero variance gives a zero row, 1 on the diagonal)."""
    cov = np.asarray(cov, dtype=float)
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    corr = np.where(np.isfinite(corr), corr, 0.0)
    np.fill_diagonal(corr, 1.0)
    return np.clip((corr + corr.T) / 2, -1.0, 1.0)


def _check_matrix(rows: list, n: int, key: str) -> None:
    """Square ``n x n``, symmetric and positive semi-definite, up to rounding."""
    if len(rows) != n or any(len(r) != n for r in rows):
        raise ValueError(f"{key!r} must be a square {n} x {n} matrix matching the length of 'names'")
    cov = np.asarray(rows, dtype=float)
    scale = max(1.0, float(np.abs(cov).max())) if n else 1.0
    if not np.allclose(cov, cov.T, rtol=0, atol=1e-9 * scale):
        raise ValueError(f"{key!r} is not symmetric")
    if n and np.linalg.eigvalsh(cov).min() < -1e-9 * scale:
        raise ValueError(f"{key!r} is not positive semi-definite")


def _validate_likelihood(block: dict, names: list[str]) -> None:
    schema = APPROXIMATION_SCHEMA
    status = block.get("status")
    keys = dict(schema["likelihood_keys"])
    if status == "ok":
        keys |= schema["likelihood_ok"]
    elif status not in schema["likelihood_statuses"]:
        raise ValueError(f"likelihood status must be one of {schema['likelihood_statuses']} (got {status!r})")
    else:
        keys["reason"] = "str"
    missing = [k for k in keys if k not in block]
    if missing:
        raise ValueError(f"likelihood is missing key(s) {missing}")
    extra = sorted(set(block) - set(keys) - {"min_relative_eigenvalue"})
    if extra:
        raise ValueError(f"likelihood has unknown key(s) {extra}")
    for key, tag in keys.items():
        if not _TYPE_CHECKS[tag](block[key]):
            raise ValueError(f"likelihood key {key!r} must be {tag}")
    if block["approximates"] != "likelihood":
        raise ValueError("likelihood 'approximates' must be 'likelihood'")
    unknown = [n for n in block["names"] if n not in names]
    if unknown:
        raise ValueError(f"likelihood names {unknown} are not contrasts of 'names'")
    if status == "ok":
        n = len(block["names"])
        for key in ("mean_natural", "mean_std", "se_natural"):
            if len(block[key]) != n:
                raise ValueError(f"likelihood {key!r} has length {len(block[key])}, expected {n}")
        for key in ("covariance_natural", "covariance_std", "correlation"):
            _check_matrix(block[key], n, f"likelihood {key}")


def validate_approximation(obj: dict) -> None:
    """Check a normal-approximation dict against :data:`APPROXIMATION_SCHEMA` (version 2).

    Required keys: ``schema_version`` (2), ``approximates`` (``"posterior"``: the top-level numbers
    include the prior), ``description``, ``names`` (unique), per name ``cells`` (``{"time": number,
    "outcome": str}``), ``units``, ``direction``, ``margins`` (positive), ``mean_natural``, ``mean_std``
    and ``marginal_fit`` (``name`` equal to the matching name; ``skewness``, ``excess_kurtosis``,
    ``ks_distance``, ``max_quantile_error_sd``, each a number or null); ``time_unit``;
    ``standardising_sds`` (``{"outcome", "sd" > 0, "unit", "source"}``); ``prior`` (dict); ``n_draws``;
    ``covariance_natural``, ``covariance_std``, ``correlation`` (square, symmetric, positive
    semi-definite up to rounding); ``likelihood`` (``approximates = "likelihood"``, ``status`` ``ok`` /
    ``not_positive_definite`` / ``not_available``, ``description``, ``method``, ``exact``, ``notes``,
    ``prior_normal``, ``names`` (a subset of ``names``); with ``ok`` its means, SEs, covariances and
    correlation on those names; otherwise a ``reason``). Optional: ``metadata`` (free-form dict). No
    other keys. Everything except ``metadata`` must be strict JSON (no NaN).

    Parameters
    ----------
    obj
        The dict (e.g. read back from ``approximations.json``).

    Raises
    ------
    ValueError
        Naming the first key that does not match.
    """
    _check_top_level_keys(obj)
    _check_contrasts(obj)
    _validate_likelihood(obj["likelihood"], obj["names"])
    content = {k: v for k, v in obj.items() if k != "metadata"}
    try:
        json.dumps(content, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"normal approximation is not strict JSON: {err}") from None


def _check_top_level_keys(obj: Any) -> None:
    """A JSON object with every required key, no unknown key, each of its type; schema version 2, a posterior."""
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
    if obj["approximates"] != "posterior":
        raise ValueError(f"'approximates' must be 'posterior' (got {obj['approximates']!r})")


def _check_contrasts(obj: dict) -> None:
    """Unique names, one entry per name in every per-contrast list, and n x n covariance matrices."""
    n = len(obj["names"])
    if n == 0:
        raise ValueError("normal approximation has no contrasts ('names' is empty)")
    if len(set(obj["names"])) != n:
        raise ValueError("'names' must be unique")
    for key in APPROXIMATION_SCHEMA["per_contrast"]:
        if len(obj[key]) != n:
            raise ValueError(f"{key!r} has length {len(obj[key])}, expected {n} (one per name)")
    for name, fit in zip(obj["names"], obj["marginal_fit"], strict=True):
        if fit["name"] != name:
            raise ValueError(f"marginal_fit entry {fit['name']!r} does not match name {name!r}")
    for key in APPROXIMATION_SCHEMA["covariances"]:
        _check_matrix(obj[key], n, key)
