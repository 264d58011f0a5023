"""Decisions from posterior draws: equivalence, non-inferiority, superiority, joint probabilities,
margin curves, and a normal approximation of the contrasts for meta-analysts (DESIGN section 4).

Input draws are ``delta`` = change in the new arm minus change in the reference arm, natural units,
dims (chain, draw, time, outcome). For a "lower is better" outcome a negative delta favours the new
arm. Every probability is a posterior (or prior) probability: names start with ``prob_``.
Every probability carries its Monte Carlo standard error (MCSE of the mean of the indicator draws,
ArviZ's ESS-based estimator; an indicator that is constant over all draws has MCSE 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

SAMPLE_DIMS = ("chain", "draw")


@dataclass(frozen=True)
class IntervalSpec:
    """The one interval convention used in every table, plot and report."""

    kind: Literal["eti", "hdi"] = "eti"
    prob: float = 0.95

    @property
    def label(self) -> str:
        name = "equal-tailed interval" if self.kind == "eti" else "highest-density interval"
        return f"{self.prob:.0%} {name}"


@dataclass(frozen=True)
class DecisionRule:
    """'equivalent' when P(|delta| < m) >= threshold; 'not equivalent' when P(|delta| >= m) >= threshold."""

    threshold: float = 0.975

    @property
    def text(self) -> str:
        t = f"{self.threshold:g}"
        return (
            f'"equivalent" when P(|delta| < m) >= {t}; "not equivalent" when P(|delta| >= m) >= {t}; '
            'otherwise "undecided"'
        )

    def decide(self, prob_equivalence: float) -> str:
        if prob_equivalence >= self.threshold:
            return "equivalent"
        if 1 - prob_equivalence >= self.threshold:
            return "not equivalent"
        return "undecided"


def _ensure_chain_draw(draws: xr.DataArray) -> xr.DataArray:
    missing = [d for d in SAMPLE_DIMS if d not in draws.dims]
    for d in missing:
        draws = draws.expand_dims(d)
    return draws.transpose(*SAMPLE_DIMS, ...)


def prob_and_mcse(indicator: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of indicator draws over (chain, draw) and its MCSE (0 where the indicator is constant)."""
    indicator = _ensure_chain_draw(indicator.astype(float))
    prob = indicator.mean(SAMPLE_DIMS).values
    constant = (indicator.std(SAMPLE_DIMS) == 0).values
    if indicator.sizes["draw"] < 4:
        return prob, np.where(constant, 0.0, np.nan)
    ds = indicator.to_dataset(name="x")
    mcse = az.mcse(ds, method="mean")["x"].values
    return prob, np.where(constant, 0.0, mcse)


def _new_better_sign(direction: str) -> float:
    return -1.0 if direction == "lower_is_better" else 1.0


def _signs(delta: xr.DataArray, direction: Mapping[str, str]) -> xr.DataArray:
    return xr.DataArray(
        [_new_better_sign(direction[str(o)]) for o in delta.coords["outcome"].values],
        dims="outcome",
        coords={"outcome": delta.coords["outcome"]},
    )


def _margins(delta: xr.DataArray, margins: Mapping[str, float]) -> xr.DataArray:
    return xr.DataArray(
        [float(margins[str(o)]) for o in delta.coords["outcome"].values],
        dims="outcome",
        coords={"outcome": delta.coords["outcome"]},
    )


def _interval(draws: xr.DataArray, interval: IntervalSpec) -> tuple[np.ndarray, np.ndarray]:
    if interval.kind == "eti":
        lo = draws.quantile((1 - interval.prob) / 2, dim=SAMPLE_DIMS).values
        hi = draws.quantile(1 - (1 - interval.prob) / 2, dim=SAMPLE_DIMS).values
        return lo, hi
    hdi = az.hdi(draws.to_dataset(name="x"), hdi_prob=interval.prob)["x"]
    return hdi.sel(hdi="lower").values, hdi.sel(hdi="higher").values


def summarise_contrasts(
    delta_natural: xr.DataArray,
    delta_std: xr.DataArray,
    interval: IntervalSpec,
    direction: Mapping[str, str],
    arm_labels: tuple[str, str],
) -> pd.DataFrame:
    """One row per (time, outcome): posterior mean, SD, median and interval, natural and standardized.

    MCSE of the mean and of the interval endpoints come from ArviZ (for an HDI the MCSE of the
    equal-tailed quantile at the endpoint's posterior probability is used as an approximation).
    """
    nat = _ensure_chain_draw(delta_natural)
    std = _ensure_chain_draw(delta_std)
    ds = nat.to_dataset(name="x")
    lo_n, hi_n = _interval(nat, interval)
    lo_s, hi_s = _interval(std, interval)
    mcse_mean = az.mcse(ds, method="mean")["x"].values
    # endpoint MCSE at the endpoint's posterior CDF value
    cdf_lo = (
        (
            nat
            < xr.DataArray(
                lo_n,
                dims=("time", "outcome"),
                coords={k: nat.coords[k] for k in ("time", "outcome")},
            )
        )
        .mean(SAMPLE_DIMS)
        .values
    )
    cdf_hi = (
        (
            nat
            <= xr.DataArray(
                hi_n,
                dims=("time", "outcome"),
                coords={k: nat.coords[k] for k in ("time", "outcome")},
            )
        )
        .mean(SAMPLE_DIMS)
        .values
    )
    ess = az.ess(ds, method="bulk")["x"].values
    rhat = az.rhat(ds)["x"].values if nat.sizes["chain"] > 1 else np.full(nat.shape[2:], np.nan)
    new_label, ref_label = arm_labels
    rows = []
    for i, t in enumerate(nat.coords["time"].values):
        for j, o in enumerate(nat.coords["outcome"].values):
            cell = nat.isel(time=i, outcome=j).to_dataset(name="x")
            m_lo = float(az.mcse(cell, method="quantile", prob=float(np.clip(cdf_lo[i, j], 0.001, 0.999)))["x"])
            m_hi = float(az.mcse(cell, method="quantile", prob=float(np.clip(cdf_hi[i, j], 0.001, 0.999)))["x"])
            favoured_neg = new_label if direction[str(o)] == "lower_is_better" else ref_label
            rows.append(
                {
                    "time": float(t),
                    "outcome": str(o),
                    "mean_natural": float(nat.isel(time=i, outcome=j).mean()),
                    "sd_natural": float(nat.isel(time=i, outcome=j).std()),
                    "median_natural": float(nat.isel(time=i, outcome=j).median()),
                    "lower_natural": float(lo_n[i, j]),
                    "upper_natural": float(hi_n[i, j]),
                    "mean_std": float(std.isel(time=i, outcome=j).mean()),
                    "sd_std": float(std.isel(time=i, outcome=j).std()),
                    "lower_std": float(lo_s[i, j]),
                    "upper_std": float(hi_s[i, j]),
                    "mcse_mean_natural": float(mcse_mean[i, j]),
                    "mcse_lower_natural": m_lo,
                    "mcse_upper_natural": m_hi,
                    "ess_bulk": float(ess[i, j]),
                    "r_hat": float(rhat[i, j]),
                    "interval_kind": interval.kind,
                    "interval_prob": interval.prob,
                    "favours_if_negative": favoured_neg,
                    "contrast": "new minus reference, change from baseline",
                }
            )
    return pd.DataFrame(rows)


def _cell_probabilities(delta: xr.DataArray, margins, direction) -> dict[str, xr.DataArray]:
    """Indicator draws of every per-cell event (dims chain, draw, time, outcome)."""
    m = _margins(delta, margins)
    sign = _signs(delta, direction)  # -1: lower is better
    benefit = sign * delta  # > 0 means the new arm is better
    return {
        "prob_equivalence": abs(delta) < m,
        "prob_noninferiority": benefit > -m,
        "prob_superiority": benefit > 0,
        "prob_harm_beyond_margin": benefit <= -m,
        "prob_not_equivalent": abs(delta) >= m,
    }


def decision_table(
    delta_natural: xr.DataArray,
    margins: Mapping[str, float],
    direction: Mapping[str, str],
    rule: DecisionRule,
    prior_delta_natural: xr.DataArray | None = None,
) -> pd.DataFrame:
    """Per-cell and joint decision probabilities with MCSE, the decision and the rule.

    Scopes: ``cell`` (one time x outcome), ``joint_time`` (all outcomes at one time),
    ``joint_all`` (all cells), ``any_beyond_margin`` (at least one cell with |delta| >= m; its
    probability is in ``prob_not_equivalent``). Joint probabilities are computed from the same
    draws (e.g. joint equivalence = share of draws with every |delta| < m).
    """
    post = _ensure_chain_draw(delta_natural)
    prior = _ensure_chain_draw(prior_delta_natural) if prior_delta_natural is not None else None
    events = _cell_probabilities(post, margins, direction)
    prior_events = _cell_probabilities(prior, margins, direction) if prior is not None else None
    times = post.coords["time"].values
    outcomes = post.coords["outcome"].values
    rows = []

    def add(scope, time, outcome, margin, indicators, prior_indicators):
        row = {"scope": scope, "time": time, "outcome": outcome, "margin": margin}
        for name, ind in indicators.items():
            p, mc = prob_and_mcse(ind)
            row[name], row[f"mcse_{name}"] = float(p), float(mc)
        if prior_indicators is not None:
            for name, ind in prior_indicators.items():
                row[f"{name}_prior"] = float(_ensure_chain_draw(ind.astype(float)).mean(SAMPLE_DIMS))
        row["decision"] = rule.decide(row["prob_equivalence"]) if scope != "any_beyond_margin" else ""
        # a decision within 2 MCSE of a threshold could flip with another seed: say so
        p_eq, mc = row["prob_equivalence"], row["mcse_prob_equivalence"]
        near = min(abs(p_eq - rule.threshold), abs((1 - p_eq) - rule.threshold))
        row["decision_within_2_mcse_of_threshold"] = bool(near < 2 * mc) if scope != "any_beyond_margin" else False
        row["decision_threshold"] = rule.threshold
        row["decision_rule"] = rule.text
        rows.append(row)

    for i, t in enumerate(times):
        for j, o in enumerate(outcomes):
            sel = {"time": i, "outcome": j}
            add(
                "cell",
                float(t),
                str(o),
                float(margins[str(o)]),
                {k: v.isel(sel) for k, v in events.items()},
                {k: v.isel(sel) for k, v in prior_events.items()} if prior_events else None,
            )
    joint_names = ("prob_equivalence", "prob_noninferiority", "prob_superiority")

    def joint(ev, sel=None):
        out = {}
        for name in joint_names:
            ind = ev[name] if sel is None else ev[name].isel(time=sel)
            dims = [d for d in ("time", "outcome") if d in ind.dims]
            out[name] = ind.all(dims)
        out["prob_not_equivalent"] = ~out["prob_equivalence"]
        return out

    for i, t in enumerate(times):
        add(
            "joint_time",
            float(t),
            "all",
            np.nan,
            joint(events, i),
            joint(prior_events, i) if prior_events else None,
        )
    add(
        "joint_all",
        np.nan,
        "all",
        np.nan,
        joint(events),
        joint(prior_events) if prior_events else None,
    )
    any_beyond = {"prob_not_equivalent": events["prob_not_equivalent"].any(("time", "outcome"))}
    any_beyond["prob_equivalence"] = ~any_beyond["prob_not_equivalent"]
    any_prior = None
    if prior_events:
        any_prior = {"prob_not_equivalent": prior_events["prob_not_equivalent"].any(("time", "outcome"))}
        any_prior["prob_equivalence"] = ~any_prior["prob_not_equivalent"]
    add("any_beyond_margin", np.nan, "all", np.nan, any_beyond, any_prior)
    return pd.DataFrame(rows)


def margin_curves(
    delta_natural: xr.DataArray,
    margins: Mapping[str, float],
    n_grid: int = 41,
    max_multiple: float = 2.0,
) -> pd.DataFrame:
    """P(|delta| < m) for m from 0 to ``max_multiple`` x the default margin (1.0 is on the grid)."""
    post = _ensure_chain_draw(delta_natural)
    multiples = np.unique(np.r_[np.linspace(0, max_multiple, n_grid), 1.0])
    rows = []
    for i, t in enumerate(post.coords["time"].values):
        for j, o in enumerate(post.coords["outcome"].values):
            cell = post.isel(time=i, outcome=j)
            m0 = float(margins[str(o)])
            for k in multiples:
                p, mc = prob_and_mcse(abs(cell) < k * m0)
                rows.append(
                    {
                        "time": float(t),
                        "outcome": str(o),
                        "margin_multiple": float(k),
                        "margin": float(k * m0),
                        "prob_equivalence": float(p),
                        "mcse": float(mc),
                        "default_margin": bool(k == 1.0),
                    }
                )
    return pd.DataFrame(rows)


APPROXIMATION_SCHEMA: dict = {
    "required": {
        "names": list,
        "units": list,
        "margins": list,
        "mean_natural": list,
        "covariance_natural": list,
        "mean_std": list,
        "covariance_std": list,
        "marginal_fit": list,
    },
    "optional": {"metadata": dict, "description": str},
    "marginal_fit_keys": [
        "name",
        "skewness",
        "excess_kurtosis",
        "ks_distance",
        "max_quantile_error_sd",
    ],
}


def normal_approximation(
    delta_natural: xr.DataArray,
    delta_std: xr.DataArray,
    margins: Mapping[str, float],
    units: Mapping[str, str],
) -> dict:
    """Multivariate normal approximation of all contrasts, with per-marginal fit measures.

    ``names`` are ``delta[time=T,outcome=O]``; means and covariances on the natural and the
    standardized scale; ``marginal_fit`` gives skewness, excess kurtosis, the Kolmogorov-Smirnov
    distance between the draws and the fitted normal, and the largest |draw quantile - normal
    quantile| at 2.5/50/97.5 % in posterior SDs.
    """
    nat = _ensure_chain_draw(delta_natural).stack(sample=SAMPLE_DIMS).transpose("sample", ...)
    std = _ensure_chain_draw(delta_std).stack(sample=SAMPLE_DIMS).transpose("sample", ...)
    times, outcomes = nat.coords["time"].values, nat.coords["outcome"].values
    x = nat.values.reshape(nat.sizes["sample"], -1)
    z = std.values.reshape(std.sizes["sample"], -1)
    names, unit_list, margin_list, fits = [], [], [], []
    for t in times:
        for o in outcomes:
            names.append(f"delta[time={float(t):g},outcome={o}]")
            unit_list.append(units[str(o)])
            margin_list.append(float(margins[str(o)]))
    for k, name in enumerate(names):
        col = x[:, k]
        mu, sd = col.mean(), col.std(ddof=1)
        qs = np.quantile(col, [0.025, 0.5, 0.975])
        normal_q = stats.norm.ppf([0.025, 0.5, 0.975], mu, sd)
        fits.append(
            {
                "name": name,
                "skewness": float(stats.skew(col)),
                "excess_kurtosis": float(stats.kurtosis(col)),
                "ks_distance": float(stats.kstest(col, "norm", args=(mu, sd)).statistic),
                "max_quantile_error_sd": float(np.max(np.abs(qs - normal_q)) / sd),
            }
        )
    return {
        "description": (
            "Multivariate normal approximation of the posterior of delta (new minus reference change from baseline)"
        ),
        "names": names,
        "units": unit_list,
        "margins": margin_list,
        "mean_natural": x.mean(axis=0).tolist(),
        "covariance_natural": np.atleast_2d(np.cov(x, rowvar=False)).tolist(),
        "mean_std": z.mean(axis=0).tolist(),
        "covariance_std": np.atleast_2d(np.cov(z, rowvar=False)).tolist(),
        "marginal_fit": fits,
    }


def validate_approximation(obj: dict) -> None:
    """Check an approximation dict against :data:`APPROXIMATION_SCHEMA`; raise ValueError if not."""
    if not isinstance(obj, dict):
        raise ValueError("approximation must be a JSON object")
    schema = APPROXIMATION_SCHEMA
    for key, kind in schema["required"].items():
        if key not in obj:
            raise ValueError(f"missing key {key!r}")
        if not isinstance(obj[key], kind):
            raise ValueError(f"{key!r} must be a {kind.__name__}")
    allowed = set(schema["required"]) | set(schema["optional"])
    extra = set(obj) - allowed
    if extra:
        raise ValueError(f"unknown keys {sorted(extra)}")
    for key, kind in schema["optional"].items():
        if key in obj and not isinstance(obj[key], kind):
            raise ValueError(f"{key!r} must be a {kind.__name__}")
    n = len(obj["names"])
    for key in ("units", "margins", "mean_natural", "mean_std", "marginal_fit"):
        if len(obj[key]) != n:
            raise ValueError(f"{key!r} has length {len(obj[key])}, expected {n}")
    for key in ("covariance_natural", "covariance_std"):
        cov = np.asarray(obj[key], dtype=float)
        if cov.shape != (n, n):
            raise ValueError(f"{key!r} must be {n} x {n} (got {cov.shape})")
        if not np.allclose(cov, cov.T, rtol=1e-9, atol=1e-12):
            raise ValueError(f"{key!r} is not symmetric")
        if np.linalg.eigvalsh(cov).min() < -1e-9 * max(1.0, np.abs(cov).max()):
            raise ValueError(f"{key!r} is not positive semi-definite")
    for fit in obj["marginal_fit"]:
        missing = [k for k in schema["marginal_fit_keys"] if k not in fit]
        if missing:
            raise ValueError(f"marginal_fit entry lacks {missing}")
