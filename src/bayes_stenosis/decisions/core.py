"""Decisions from posterior draws: equivalence, non-inferiority, superiority, joint probabilities,
margin curves, and a normal approximation of the contrasts for meta-analysts.

Pure computations: no file I/O and no plotting.

Input draws are ``delta`` = (change from baseline in the new arm) - (change from baseline in the
reference arm), in natural units, as an :class:`xarray.DataArray` with dims
``("chain", "draw", "time", "outcome")`` (a missing ``chain`` dim is read as a single chain).
``time`` coordinates are follow-up times in weeks (floats), ``outcome`` coordinates are outcome
names. For a ``"lower_is_better"`` outcome a negative delta favours the new arm; for a
``"higher_is_better"`` outcome a positive delta does. Each outcome has an equivalence margin
``m > 0`` in natural units.

Every probability here is a posterior (or prior) probability of an event, estimated as the share
of draws in which the event holds. Names start with ``prob_``; nothing is a p-value. Every
probability carries its Monte Carlo standard error: ArviZ's ESS-based MCSE of the mean of the
indicator draws (``az.mcse(..., method="mean")``). An indicator that is constant over all draws
(probability exactly 0 or 1 in the sample) has no Monte Carlo variation to estimate and is given
MCSE 0; with fewer than 4 draws per chain ArviZ cannot estimate an MCSE and it is NaN.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

SAMPLE_DIMS = ("chain", "draw")
CELL_DIMS = ("time", "outcome")
DIRECTIONS = ("lower_is_better", "higher_is_better")
# the per-cell events of the decision table, in column order
EVENTS = (
    "prob_equivalence",
    "prob_noninferiority",
    "prob_superiority",
    "prob_harm_beyond_margin",
    "prob_not_equivalent",
)
# ArviZ needs at least this many draws per chain for an MCSE / ESS
_MIN_DRAWS_FOR_MCSE = 4


# --------------------------------------------------------------------------------------------
# conventions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntervalSpec:
    """The one interval convention used in every table, plot and report.

    Parameters
    ----------
    kind
        ``"eti"``: equal-tailed interval (posterior quantiles at (1 - prob)/2 and (1 + prob)/2);
        ``"hdi"``: highest-density interval (ArviZ ``az.hdi``, the shortest interval holding
        ``prob`` of the draws).
    prob
        Posterior probability inside the interval, strictly between 0 and 1.
    """

    kind: Literal["eti", "hdi"] = "eti"
    prob: float = 0.95

    def __post_init__(self) -> None:
        if self.kind not in ("eti", "hdi"):
            raise ValueError(f'interval kind must be "eti" or "hdi" (got {self.kind!r})')
        if not (0.0 < float(self.prob) < 1.0):
            raise ValueError(f"interval prob must be strictly between 0 and 1 (got {self.prob!r})")

    @property
    def label(self) -> str:
        """Words for captions, e.g. ``"95% equal-tailed interval"``."""
        name = "equal-tailed interval" if self.kind == "eti" else "highest-density interval"
        return f"{round(100 * self.prob, 6):g}% {name}"


@dataclass(frozen=True)
class DecisionRule:
    """The equivalence decision rule.

    ``"equivalent"`` when P(|delta| < m) >= threshold; ``"not equivalent"`` when
    P(|delta| >= m) >= threshold; otherwise ``"undecided"``.

    Parameters
    ----------
    threshold
        Posterior probability required for a decision, in (0.5, 1]; above 0.5 the two decisions
        cannot both hold.
    """

    threshold: float = 0.975

    def __post_init__(self) -> None:
        if not (0.5 < float(self.threshold) <= 1.0):
            raise ValueError(f"decision threshold must be in (0.5, 1] (got {self.threshold!r})")

    @property
    def text(self) -> str:
        """The rule in words, with the threshold value."""
        t = f"{self.threshold:g}"
        return (
            f'"equivalent" when P(|delta| < m) >= {t}; "not equivalent" when P(|delta| >= m) >= {t}; '
            'otherwise "undecided"'
        )

    def decide(self, prob_equivalence: float) -> str:
        """Apply the rule to a posterior probability of equivalence.

        Parameters
        ----------
        prob_equivalence
            P(|delta| < m) (or a joint version of it).

        Returns
        -------
        str
            ``"equivalent"``, ``"not equivalent"`` or ``"undecided"`` (also for NaN).
        """
        p = float(prob_equivalence)
        if p >= self.threshold:
            return "equivalent"
        if 1.0 - p >= self.threshold:
            return "not equivalent"
        return "undecided"


# --------------------------------------------------------------------------------------------
# input checks and small helpers
# --------------------------------------------------------------------------------------------


def _as_draws(draws: xr.DataArray, name: str) -> xr.DataArray:
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


def _same_cells(a: xr.DataArray, b: xr.DataArray, names: tuple[str, str]) -> xr.DataArray:
    """Return ``b`` reordered to ``a``'s (time, outcome) cells; raise if a cell is missing."""
    try:
        return b.sel(time=a.coords["time"].values, outcome=a.coords["outcome"].values)
    except KeyError as err:
        raise ValueError(f"{names[1]} lacks (time, outcome) cells of {names[0]}: {err}") from None


def _outcomes(draws: xr.DataArray) -> list[str]:
    return [str(o) for o in draws.coords["outcome"].values]


def _margin_vector(draws: xr.DataArray, margins: Mapping[str, float]) -> xr.DataArray:
    values = []
    for o in _outcomes(draws):
        if o not in margins:
            raise ValueError(f"no equivalence margin for outcome {o!r}")
        m = float(margins[o])
        if not (math.isfinite(m) and m > 0):
            raise ValueError(f"margin for outcome {o!r} must be a positive number (got {margins[o]!r})")
        values.append(m)
    return xr.DataArray(values, dims="outcome", coords={"outcome": draws.coords["outcome"]})


def _direction_list(draws: xr.DataArray, direction: Mapping[str, str]) -> list[str]:
    out = []
    for o in _outcomes(draws):
        if o not in direction:
            raise ValueError(f"no direction for outcome {o!r}")
        if direction[o] not in DIRECTIONS:
            raise ValueError(f"direction of outcome {o!r} must be one of {DIRECTIONS} (got {direction[o]!r})")
        out.append(direction[o])
    return out


def _new_better_sign(draws: xr.DataArray, direction: Mapping[str, str]) -> xr.DataArray:
    """-1 where lower is better, +1 where higher is better: ``sign * delta > 0`` = new arm better."""
    signs = [-1.0 if d == "lower_is_better" else 1.0 for d in _direction_list(draws, direction)]
    return xr.DataArray(signs, dims="outcome", coords={"outcome": draws.coords["outcome"]})


def _mcse(draws: xr.DataArray, method: str, prob: float | None = None) -> xr.DataArray:
    """ArviZ MCSE over (chain, draw) of a float DataArray; NaN with too few draws."""
    reduced = draws.isel(chain=0, draw=0, drop=True)
    if draws.sizes["draw"] < _MIN_DRAWS_FOR_MCSE:
        return xr.full_like(reduced, np.nan, dtype=float)
    kwargs = {"prob": prob} if method == "quantile" else {}
    out = az.mcse(draws.astype(float).to_dataset(name="x"), method=method, **kwargs)["x"]
    return out.transpose(*reduced.dims)


def _prob_mcse(indicator: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Share of draws where ``indicator`` holds, and its MCSE (0 where the indicator is constant)."""
    x = indicator.astype(float)
    prob = x.mean(SAMPLE_DIMS)
    constant = x.max(SAMPLE_DIMS) == x.min(SAMPLE_DIMS)
    mcse = _mcse(x, "mean").where(~constant, 0.0)
    return prob, mcse


# --------------------------------------------------------------------------------------------
# contrast summaries
# --------------------------------------------------------------------------------------------


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
        mcse_lower = _mcse(draws, "quantile", prob=a)
        mcse_upper = _mcse(draws, "quantile", prob=1.0 - a)
    else:
        hdi = az.hdi(draws.to_dataset(name="x"), hdi_prob=interval.prob)["x"]
        lower = hdi.sel(hdi="lower", drop=True)
        upper = hdi.sel(hdi="higher", drop=True)
        n = draws.sizes["chain"] * draws.sizes["draw"]
        cdf_lower = (draws <= lower).mean(SAMPLE_DIMS)
        cdf_upper = (draws <= upper).mean(SAMPLE_DIMS)
        mcse_lower = xr.full_like(lower, np.nan, dtype=float)
        mcse_upper = xr.full_like(upper, np.nan, dtype=float)
        if draws.sizes["draw"] >= _MIN_DRAWS_FOR_MCSE:
            clip = (1.0 / n, 1.0 - 1.0 / n)
            for i in range(draws.sizes["time"]):
                for j in range(draws.sizes["outcome"]):
                    cell = draws.isel(time=[i], outcome=[j])
                    for cdf, target in ((cdf_lower, mcse_lower), (cdf_upper, mcse_upper)):
                        p = float(np.clip(cdf.values[i, j], *clip))
                        target[i, j] = float(_mcse(cell, "quantile", prob=p).values[0, 0])
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
    ``ess_bulk`` and ``r_hat`` are ``az.ess(method="bulk")`` and ``az.rhat`` of delta (natural
    scale); R-hat is NaN with a single chain, ESS and MCSEs are NaN with fewer than 4 draws per
    chain.
    """
    nat = _as_draws(delta_natural, "delta_natural")
    std = _same_cells(nat, _as_draws(delta_std, "delta_std"), ("delta_natural", "delta_std"))
    if std.sizes["chain"] != nat.sizes["chain"] or std.sizes["draw"] != nat.sizes["draw"]:
        raise ValueError("delta_natural and delta_std must hold the same (chain, draw) draws")
    directions = _direction_list(nat, direction)
    if len(arm_labels) != 2:
        raise ValueError(f"arm_labels must be (new_label, reference_label) (got {arm_labels!r})")
    new_label, ref_label = (str(label) for label in arm_labels)

    def cellwise(x: xr.DataArray) -> np.ndarray:
        return x.transpose(*CELL_DIMS).values.ravel()

    columns: dict[str, Any] = {}
    for scale, draws in (("natural", nat), ("std", std)):
        iv = _interval_and_mcse(draws, interval)
        columns[f"mean_{scale}"] = cellwise(draws.mean(SAMPLE_DIMS))
        columns[f"sd_{scale}"] = cellwise(draws.std(SAMPLE_DIMS, ddof=1))
        columns[f"median_{scale}"] = cellwise(draws.median(SAMPLE_DIMS))
        columns[f"lower_{scale}"] = iv["lower"].ravel()
        columns[f"upper_{scale}"] = iv["upper"].ravel()
        columns[f"mcse_mean_{scale}"] = cellwise(_mcse(draws, "mean"))
        if scale == "natural":
            columns["mcse_median_natural"] = cellwise(_mcse(draws, "quantile", prob=0.5))
        columns[f"mcse_lower_{scale}"] = iv["mcse_lower"].ravel()
        columns[f"mcse_upper_{scale}"] = iv["mcse_upper"].ravel()

    n_cells = nat.sizes["time"] * nat.sizes["outcome"]
    if nat.sizes["draw"] >= _MIN_DRAWS_FOR_MCSE:
        ess = cellwise(az.ess(nat.to_dataset(name="x"), method="bulk")["x"])
    else:
        ess = np.full(n_cells, np.nan)
    if nat.sizes["chain"] >= 2 and nat.sizes["draw"] >= _MIN_DRAWS_FOR_MCSE:
        rhat = cellwise(az.rhat(nat.to_dataset(name="x"))["x"])
    else:
        rhat = np.full(n_cells, np.nan)

    times = nat.coords["time"].values.astype(float)
    outcomes = _outcomes(nat)
    frame = pd.DataFrame(
        {
            "time": np.repeat(times, len(outcomes)),
            "outcome": np.tile(np.array(outcomes, dtype=object), len(times)),
            "direction": np.tile(np.array(directions, dtype=object), len(times)),
            "favours_if_negative": np.tile(
                np.array([new_label if d == "lower_is_better" else ref_label for d in directions], dtype=object),
                len(times),
            ),
        }
    )
    order = [
        "mean_natural",
        "sd_natural",
        "median_natural",
        "lower_natural",
        "upper_natural",
        "mcse_mean_natural",
        "mcse_median_natural",
        "mcse_lower_natural",
        "mcse_upper_natural",
        "mean_std",
        "sd_std",
        "median_std",
        "lower_std",
        "upper_std",
        "mcse_mean_std",
        "mcse_lower_std",
        "mcse_upper_std",
    ]
    for name in order:
        frame[name] = np.asarray(columns[name], dtype=float)
    frame["ess_bulk"] = ess.astype(float)
    frame["r_hat"] = rhat.astype(float)
    frame["interval_kind"] = interval.kind
    frame["interval_prob"] = float(interval.prob)
    frame["interval_label"] = interval.label
    frame["contrast"] = "new minus reference, change from baseline"
    return frame


# --------------------------------------------------------------------------------------------
# decision table
# --------------------------------------------------------------------------------------------


def scoped_event_indicators(
    delta: xr.DataArray, margin: xr.DataArray, sign: xr.DataArray
) -> dict[str, dict[str, xr.DataArray]]:
    """``scope -> event -> indicator draws``: the one definition of the decision events.

    Per cell (dims chain, draw, time, outcome): equivalence :math:`|\\delta| < m`, non-inferiority
    :math:`s\\delta > -m`, superiority :math:`s\\delta > 0`, harm beyond the margin
    :math:`s\\delta \\le -m` and non-equivalence (``s`` = +1 where higher is better, -1 where lower
    is). ``joint_time`` (all outcomes at a time) and ``joint_all`` (all cells) require the event in
    every cell; ``any_beyond_margin`` is "some cell is outside its margin". The decision table and the
    diagnostics of its probabilities (:mod:`bayes_stenosis.diagnostics`) both use these.
    """
    benefit = sign * delta  # > 0: the new arm is better
    cell = {
        "prob_equivalence": abs(delta) < margin,
        "prob_noninferiority": benefit > -margin,
        "prob_superiority": benefit > 0,
        "prob_harm_beyond_margin": benefit <= -margin,
        "prob_not_equivalent": abs(delta) >= margin,
    }

    def joint(dims: tuple[str, ...]) -> dict[str, xr.DataArray]:
        out = {name: cell[name].all(dims) for name in ("prob_equivalence", "prob_noninferiority", "prob_superiority")}
        out["prob_harm_beyond_margin"] = ~out["prob_noninferiority"]
        out["prob_not_equivalent"] = ~out["prob_equivalence"]
        return out

    any_beyond = cell["prob_not_equivalent"].any(CELL_DIMS)
    return {
        "cell": cell,
        "joint_time": joint(("outcome",)),
        "joint_all": joint(CELL_DIMS),
        "any_beyond_margin": {"prob_not_equivalent": any_beyond, "prob_equivalence": ~any_beyond},
    }


def _scoped_probabilities(
    delta: xr.DataArray, margin: xr.DataArray, sign: xr.DataArray
) -> dict[str, dict[str, tuple[xr.DataArray, xr.DataArray]]]:
    """``scope -> event -> (prob, mcse)`` for the four scopes of the decision table."""
    indicators = scoped_event_indicators(delta, margin, sign)
    return {scope: {name: _prob_mcse(ind) for name, ind in inds.items()} for scope, inds in indicators.items()}


def decision_table(
    delta_natural: xr.DataArray,
    margins: Mapping[str, float],
    direction: Mapping[str, str],
    rule: DecisionRule,
    prior_delta_natural: xr.DataArray | None = None,
) -> pd.DataFrame:
    """Per-cell and joint posterior probabilities of equivalence etc., with MCSE and decisions.

    Parameters
    ----------
    delta_natural
        Posterior draws of delta, natural units, dims ``("chain", "draw", "time", "outcome")``.
    margins
        ``outcome -> m > 0`` (natural units).
    direction
        ``outcome -> "lower_is_better" | "higher_is_better"``.
    rule
        The decision rule applied to ``prob_equivalence``.
    prior_delta_natural
        Optional prior draws of delta with the same (time, outcome) cells (any number of chains
        and draws, e.g. a single chain); adds ``<prob>_prior`` and ``mcse_<prob>_prior`` columns.

    Returns
    -------
    pandas.DataFrame
        Columns ``scope, time, outcome, direction, margin``, then for each of
        ``prob_equivalence`` = P(|delta| < m), ``prob_noninferiority`` = P(new arm not worse than
        the reference by m or more) (lower is better: P(delta < m); higher is better:
        P(delta > -m)), ``prob_superiority`` = P(new arm better) (lower is better: P(delta < 0);
        higher is better: P(delta > 0)), ``prob_harm_beyond_margin`` = P(new arm worse by m or
        more) = 1 - prob_noninferiority, ``prob_not_equivalent`` = P(|delta| >= m) =
        1 - prob_equivalence: the probability column and ``mcse_<prob>``; with prior draws also
        ``<prob>_prior`` and ``mcse_<prob>_prior``; then ``decision,
        decision_within_2_mcse_of_threshold, decision_threshold, decision_rule``.

        Rows (``scope``), all computed from the same draws:

        - ``"cell"``: one row per (time, outcome).
        - ``"joint_time"``: all outcomes at one time (``outcome = "all"``, ``margin`` NaN), e.g.
          joint equivalence = share of draws with |delta[t, o]| < m[o] for every outcome o;
          joint non-inferiority and superiority likewise. Their complements are
          ``prob_not_equivalent`` = P(at least one outcome outside its margin) and
          ``prob_harm_beyond_margin`` = P(at least one outcome worse by its margin or more).
        - ``"joint_all"``: the same over all cells (``time`` NaN, ``outcome = "all"``).
        - ``"any_beyond_margin"``: ``prob_not_equivalent`` = P(any cell has |delta| >= m) (and
          its complement in ``prob_equivalence``); other probabilities NaN; no decision (``""``).

    Notes
    -----
    ``direction`` is the outcome's direction for cell rows, the common direction for joint rows
    (``"mixed"`` if outcomes differ). ``decision_within_2_mcse_of_threshold`` flags decisions
    whose ``prob_equivalence`` lies within 2 MCSE of a decision boundary (another seed could
    flip them). MCSE: see the module docstring (0 for a constant indicator).
    """
    post = _as_draws(delta_natural, "delta_natural")
    margin = _margin_vector(post, margins)
    sign = _new_better_sign(post, direction)
    directions = _direction_list(post, direction)
    joint_direction = directions[0] if len(set(directions)) == 1 else "mixed"
    scoped = _scoped_probabilities(post, margin, sign)
    prior_scoped = None
    if prior_delta_natural is not None:
        prior = _same_cells(
            post, _as_draws(prior_delta_natural, "prior_delta_natural"), ("delta_natural", "prior_delta_natural")
        )
        prior_scoped = _scoped_probabilities(prior, margin, sign)

    times = post.coords["time"].values.astype(float)
    outcomes = _outcomes(post)
    rows: list[dict[str, Any]] = []

    def add(scope: str, sel: dict[str, int], time: float, outcome: str, direction_: str, m: float) -> None:
        row: dict[str, Any] = {"scope": scope, "time": time, "outcome": outcome, "direction": direction_, "margin": m}
        for name in EVENTS:
            prob, mcse = scoped[scope].get(name, (None, None))
            row[name] = np.nan if prob is None else float(prob.isel(sel))
            row[f"mcse_{name}"] = np.nan if mcse is None else float(mcse.isel(sel))
        if prior_scoped is not None:
            for name in EVENTS:
                prob, mcse = prior_scoped[scope].get(name, (None, None))
                row[f"{name}_prior"] = np.nan if prob is None else float(prob.isel(sel))
                row[f"mcse_{name}_prior"] = np.nan if mcse is None else float(mcse.isel(sel))
        if scope == "any_beyond_margin":
            row["decision"] = ""
            row["decision_within_2_mcse_of_threshold"] = False
        else:
            p, mc = row["prob_equivalence"], row["mcse_prob_equivalence"]
            row["decision"] = rule.decide(p)
            near = min(abs(p - rule.threshold), abs((1.0 - p) - rule.threshold))
            row["decision_within_2_mcse_of_threshold"] = bool(near < 2 * mc)  # False when MCSE is NaN
        row["decision_threshold"] = float(rule.threshold)
        row["decision_rule"] = rule.text
        rows.append(row)

    for i, t in enumerate(times):
        for j, o in enumerate(outcomes):
            add("cell", {"time": i, "outcome": j}, float(t), o, directions[j], float(margin.values[j]))
    for i, t in enumerate(times):
        add("joint_time", {"time": i}, float(t), "all", joint_direction, np.nan)
    add("joint_all", {}, np.nan, "all", joint_direction, np.nan)
    add("any_beyond_margin", {}, np.nan, "all", joint_direction, np.nan)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# margin curves
# --------------------------------------------------------------------------------------------


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
    post = _as_draws(delta_natural, "delta_natural")
    margin = _margin_vector(post, margins)
    multiples = _margin_grid(int(n_grid), float(max_multiple))
    grid = xr.DataArray(multiples, dims="margin_multiple")
    frames = []
    for i, t in enumerate(post.coords["time"].values.astype(float)):
        for j, o in enumerate(_outcomes(post)):
            m0 = float(margin.values[j])
            cell = abs(post.isel(time=i, outcome=j, drop=True))
            prob, mcse = _prob_mcse(cell < grid * m0)
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


# --------------------------------------------------------------------------------------------
# normal approximation for meta-analysts
# --------------------------------------------------------------------------------------------

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
    nat = _as_draws(delta_natural, "delta_natural")
    std = _same_cells(nat, _as_draws(delta_std, "delta_std"), ("delta_natural", "delta_std"))
    if std.sizes["chain"] != nat.sizes["chain"] or std.sizes["draw"] != nat.sizes["draw"]:
        raise ValueError("delta_natural and delta_std must hold the same (chain, draw) draws")
    n_draws = nat.sizes["chain"] * nat.sizes["draw"]
    if n_draws < 2:
        raise ValueError("a normal approximation needs at least 2 draws")
    margin = _margin_vector(nat, margins)
    times = nat.coords["time"].values.astype(float)
    outcomes = _outcomes(nat)
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
