"""Convergence diagnostics: R-hat, bulk/tail ESS and MCSE per quantity, sampler health, a verdict.

Thresholds come from the spec's ``[diagnostics]`` table (docs/methods.md section 7: R-hat <= 1.01, bulk and
tail ESS >= 400, no divergences) and are written next to the verdict.

Three tables, all from the same draws:

* :func:`parameter_table`: every parameter and derived quantity of the posterior (``diagnostics.csv``);
* :func:`decision_probability_table`: every reported decision probability (``prob_equivalence`` etc.
  per cell and jointly) as the mean of its indicator draws, with the R-hat, bulk ESS and MCSE of
  those indicator draws (``diagnostics_decisions.csv``). The Bayesian Analysis Reporting
  Guidelines (Kruschke 2021, steps 2B/2C) ask for convergence and resolution of "all parameters
  and derived values", including the probability mass inside the margin;
* :func:`sampler_table`: divergences, E-BFMI and tree-depth saturation per chain.

:func:`verdict` combines them; :func:`load_run_diagnostics` rebuilds all of it from a saved run
folder only (``posterior.nc``, ``decisions.csv``, ``manifest.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayes_stenosis.decisions import scoped_event_indicators
from bayes_stenosis.errors import RunFolderError
from bayes_stenosis.spec import Diagnostics
from bayes_stenosis.stats.mcmc import convergence_summary, ess_bulk, mcse_mean
from bayes_stenosis.stats.mcmc import rhat as mcmc_rhat

#: Posterior variables summarised in diagnostics.csv (those present in a run).
REPORTED_VARS = ("Delta", "delta", "delta_natural", "change_natural", "mu_change", "sigma_change", "tau", "rho")
REPORTED_VARS += ("r_time", "trial_sd_ratio", "change_sd_ratio")


def _free_and_reported(idata: az.InferenceData) -> list[str]:
    names = [v for v in REPORTED_VARS if v in idata.posterior]
    others = [
        v for v in idata.posterior.data_vars if v not in names and not v.startswith("z_") and v != "threshold_log_prob"
    ]
    return names + others


def parameter_table(idata: az.InferenceData, var_names: list[str] | None = None, prob: float = 0.95) -> pd.DataFrame:
    """Mean, SD, the equal-tailed ``prob`` interval (the package's one interval convention, not ArviZ's
    94 % HDI), R-hat, bulk/tail ESS and the MCSE of mean and SD of every parameter and derived quantity.

    The numbers and the row labels (``Delta[4.0]``) are ``az.summary``'s; they are computed for every quantity
    at once (:mod:`bayes_stenosis.stats.mcmc`), where ``az.summary`` took about 1 s a fit, one quantity at a
    time. A constant quantity (a correlation matrix's diagonal) has R-hat NaN and MCSEs 0.
    """
    names = var_names or _free_and_reported(idata)
    posterior = idata.posterior
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    labeller = az.labels.BaseLabeller()
    labels, columns = [], []
    for name in names:
        values = posterior[name].transpose("chain", "draw", ...)
        cell_dims = values.dims[2:]
        for isel in np.ndindex(*values.shape[2:]):
            sel = {d: values.coords[d].values[i] for d, i in zip(cell_dims, isel, strict=True)}
            labels.append(labeller.make_label_flat(name, sel, dict(zip(cell_dims, isel, strict=True))))
        columns.append(values.values.reshape(chains, draws, -1).astype(float))
    stacked = np.concatenate(columns, axis=2) if columns else np.empty((chains, draws, 0))
    summary = convergence_summary(stacked)
    lower, upper = np.quantile(stacked.reshape(chains * draws, -1), [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    table = pd.DataFrame(
        {
            "quantity": labels,
            "mean": summary.mean,
            "sd": summary.sd,
            f"eti_{(1 - prob) / 2:.1%}": lower,
            f"eti_{(1 + prob) / 2:.1%}": upper,
            "mcse_mean": summary.mcse_mean,
            "mcse_sd": summary.mcse_sd,
            "ess_bulk": summary.ess_bulk,
            "ess_tail": summary.ess_tail,
            "r_hat": summary.r_hat,
        }
    )
    return table


def sampler_table(idata: az.InferenceData) -> pd.DataFrame:
    """Per chain: draws, divergences, E-BFMI, tree-depth saturation."""
    stats = idata.sample_stats
    chains = stats.sizes["chain"]
    diverging = stats["diverging"].values.reshape(chains, -1) if "diverging" in stats else None
    try:
        bfmi = np.asarray(az.bfmi(idata))
    except (KeyError, TypeError, ValueError):
        bfmi = np.full(chains, np.nan)
    if "tree_depth" in stats and "reached_max_treedepth" in stats:
        saturated = stats["reached_max_treedepth"].values.reshape(chains, -1).mean(axis=1)
    elif "maxdepth_reached" in stats:  # nutpie
        saturated = stats["maxdepth_reached"].values.reshape(chains, -1).mean(axis=1)
    else:
        saturated = np.full(chains, np.nan)
    return pd.DataFrame(
        {
            "chain": np.arange(chains),
            "draws": stats.sizes["draw"],
            "divergences": diverging.sum(axis=1) if diverging is not None else np.nan,
            "ebfmi": bfmi,
            "treedepth_saturation_fraction": saturated,
        }
    )


@dataclass
class Verdict:
    status: str  # "ok" | "warning" | "fail"
    reasons: list[str]
    thresholds: str

    def line(self) -> str:
        why = "; ".join(self.reasons) if self.reasons else "all checks passed"
        return f"{self.status}: {why} (thresholds: {self.thresholds})"


#: Sampler-health thresholds (warnings): Betancourt's E-BFMI rule of thumb and tree-depth saturation.
MIN_EBFMI = 0.3
MAX_TREEDEPTH_SATURATION = 0.01


def thresholds_text(limits: Diagnostics) -> str:
    """The verdict's thresholds, written next to it wherever it is shown."""
    return (
        f"fail: R-hat > {limits.max_rhat} or bulk ESS < {limits.min_ess_bulk:g} or tail ESS < "
        f"{limits.min_ess_tail:g} for any parameter or derived quantity, R-hat > {limits.max_rhat} for any decision "
        f"probability, divergences > {limits.max_divergences}; warning: E-BFMI < {MIN_EBFMI} in a chain, tree depth "
        f"saturated in > {MAX_TREEDEPTH_SATURATION:.0%} of a chain's draws, bulk ESS of a decision probability's "
        f"indicator < {limits.min_ess_bulk:g}"
    )


def verdict(
    params: pd.DataFrame,
    sampler: pd.DataFrame,
    limits: Diagnostics,
    decision_probs: pd.DataFrame | None = None,
) -> Verdict:
    """ok / warning / fail with the reasons; failures are reported, never hidden.

    Parameters
    ----------
    params
        :func:`parameter_table` (rows with NaN R-hat, e.g. constant quantities, are skipped).
    sampler
        :func:`sampler_table`.
    limits
        The spec's ``[diagnostics]`` thresholds.
    decision_probs
        Optional :func:`decision_probability_table`; its R-hat counts towards "fail", a low
        indicator ESS towards "warning". A decision within 2 MCSE of its threshold is not a
        convergence problem and does not change the verdict: :func:`near_threshold_note` reports it.
    """
    found = [
        *_parameter_checks(params, len(sampler), limits),
        *_sampler_checks(sampler, limits),
        *_decision_probability_checks(decision_probs, limits),
    ]
    severities = {severity for severity, _ in found}
    status = "fail" if "fail" in severities else "warning" if "warning" in severities else "ok"
    return Verdict(status=status, reasons=[reason for _, reason in found], thresholds=thresholds_text(limits))


#: What to do when a quantity fails R-hat or ESS, by the first matching name prefix (model component).
REMEDIES: tuple[tuple[str, str], ...] = (
    (
        "ipd_patient",
        'patient-effect SDs near zero (covariance = "patient_effects" on data without a patient effect): '
        'fit with [ipd] covariance = "unstructured", the default',
    ),
    (
        "ipd_",
        "a patient-level covariance: more draws (--draws, --tune); with few patients per arm fewer parameters "
        '([ipd] residual_correlation = "none") may be identified where the unstructured covariance is not',
    ),
    (
        "tau",
        "the outcome-pooling SD near zero (a funnel): more --tune, or fit --model independent (no pooling) and compare",
    ),
    ("sigma_change", 'the pooling SD of the arms\' changes: [hierarchy] reference_change = "unpooled" and compare'),
    ("threshold", "the threshold statements' latent terms: more --tune and --draws"),
)
GENERIC_REMEDY = "more --draws and --tune; if it persists, the data do not identify it under this prior"
DIVERGENCE_REMEDY = (
    "raise [sampler] target_accept in the spec toward 0.99; if they persist the posterior has a region the "
    "sampler cannot enter (often a variance near zero) and the fit must not be used"
)


def remedy(quantity: str) -> str:
    """What to do about a quantity that fails R-hat or ESS, by the model component its name belongs to."""
    return next((text for prefix, text in REMEDIES if quantity.startswith(prefix)), GENERIC_REMEDY)


def _worst(frame: pd.DataFrame, col: str, largest: bool) -> tuple[str, float]:
    """The quantity with the largest (or smallest) finite ``col``, and that value."""
    frame = frame.dropna(subset=[col])
    row = frame.loc[frame[col].idxmax() if largest else frame[col].idxmin()]
    return row["quantity"], row[col]


def _parameter_checks(params: pd.DataFrame, n_chains: int, limits: Diagnostics) -> list[tuple[str, str]]:
    """``(severity, reason)`` for R-hat and bulk / tail ESS of the parameters, or for R-hat not computable."""
    found = []
    finite = params.dropna(subset=["r_hat"])
    if n_chains < 2 or (len(params) and not len(finite)):
        # one chain, or too few draws: R-hat (and with it the check of convergence) cannot be computed
        text = f"convergence not checkable: R-hat needs >= 2 chains of >= 4 draws ({n_chains} chain(s))"
        found.append(("fail", text))
    if len(finite):
        q, v = _worst(finite, "r_hat", largest=True)
        if v > limits.max_rhat:
            found.append(("fail", f"max R-hat {v:.3f} ({q}; what to do: {remedy(q)})"))
        q, v = _worst(finite, "ess_bulk", largest=False)
        if v < limits.min_ess_bulk:
            found.append(("fail", f"min bulk ESS {v:.0f} ({q}; what to do: {remedy(q)})"))
        q, v = _worst(finite, "ess_tail", largest=False)
        if v < limits.min_ess_tail:
            found.append(("fail", f"min tail ESS {v:.0f} ({q}; what to do: {remedy(q)})"))
    return found


def _sampler_checks(sampler: pd.DataFrame, limits: Diagnostics) -> list[tuple[str, str]]:
    """``(severity, reason)`` for divergences (fail), low E-BFMI and tree-depth saturation (warnings)."""
    found = []
    n_div = int(np.nansum(sampler["divergences"]))
    if n_div > limits.max_divergences:
        per_chain = ", ".join(f"{int(d)}" for d in sampler["divergences"].fillna(0))
        found.append(
            ("fail", f"{n_div} divergent transitions (per chain: {per_chain}; what to do: {DIVERGENCE_REMEDY})")
        )
    low_bfmi = sampler.loc[sampler["ebfmi"] < MIN_EBFMI, "chain"]
    if len(low_bfmi):
        found.append(("warning", f"low E-BFMI in chain(s) {[int(c) for c in low_bfmi]}"))
    saturated = sampler.loc[sampler["treedepth_saturation_fraction"] > MAX_TREEDEPTH_SATURATION, "chain"]
    if len(saturated):
        chains = [int(c) for c in saturated]
        text = f"tree depth saturated in > {MAX_TREEDEPTH_SATURATION:.0%} of draws in chain(s) {chains}"
        found.append(("warning", text))
    return found


def _decision_probability_checks(decision_probs: pd.DataFrame | None, limits: Diagnostics) -> list[tuple[str, str]]:
    """``(severity, reason)`` for the decision probabilities' indicator draws: R-hat (fail), bulk ESS (warning)."""
    if decision_probs is None or not len(decision_probs) or decision_probs["r_hat"].isna().all():
        return []
    found = []
    varying = decision_probs.dropna(subset=["r_hat"])
    q, v = _worst(varying, "r_hat", largest=True)
    if v > limits.max_rhat:
        found.append(("fail", f"decision probability R-hat {v:.3f} ({q})"))
    low = varying[varying["ess_bulk"] < limits.min_ess_bulk]
    if len(low):
        q, v = _worst(low, "ess_bulk", largest=False)
        text = f"{len(low)} decision probabilities with indicator ESS < {limits.min_ess_bulk:g} (min {v:.0f}, {q})"
        found.append(("warning", text))
    return found


#: Events diagnosed per scope (the probability columns of decisions.csv; "any cell" is non-equivalence).
DIAGNOSED_EVENTS = ("prob_equivalence", "prob_noninferiority", "prob_superiority", "prob_harm_beyond_margin")


def indicator_draws(delta: xr.DataArray, decisions: pd.DataFrame) -> dict[tuple[str, str], xr.DataArray]:
    """``(scope, event) -> indicator draws`` of the decision table's probabilities, from
    ``delta_natural`` and decisions.csv's margins and directions
    (:func:`bayes_stenosis.decisions.scoped_event_indicators`: the same definitions)."""
    cells = decisions[decisions["scope"] == "cell"]
    by_outcome = cells.drop_duplicates("outcome").set_index("outcome")
    outcomes = [str(o) for o in delta.coords["outcome"].values]
    coords = {"outcome": delta.outcome}
    margin = xr.DataArray([float(by_outcome.loc[o, "margin"]) for o in outcomes], dims="outcome", coords=coords)
    lower = [by_outcome.loc[o, "direction"] == "lower_is_better" for o in outcomes]
    sign = xr.DataArray([-1.0 if low else 1.0 for low in lower], dims="outcome", coords=coords)
    evidence = None
    if "evidence" in cells:  # cells without evidence stay out of the joint events, as in the table
        has = cells.set_index(["time", "outcome"])["evidence"] != "none"
        evidence = xr.DataArray(
            [[bool(has.get((float(t), o), True)) for o in outcomes] for t in delta.coords["time"].values],
            dims=("time", "outcome"),
            coords={"time": delta.time, "outcome": delta.outcome},
        )
    events = scoped_event_indicators(delta, margin, sign, evidence)
    out = {
        (scope, name): events[scope][name] for scope in ("cell", "joint_time", "joint_all") for name in DIAGNOSED_EVENTS
    }
    out[("any_beyond_margin", "prob_not_equivalent")] = events["any_beyond_margin"]["prob_not_equivalent"]
    return out


def _label(scope: str, event: str, time: float, outcome: str) -> str:
    """A decision probability in words, e.g. ``prob_equivalence[week 4, ODI]``."""
    if scope == "cell":
        return f"{event}[week {time:g}, {outcome}]"
    if scope == "joint_time":
        return f"{event}[week {time:g}, all outcomes]"
    if scope == "joint_all":
        return f"{event}[all cells]"
    return f"{event}[any cell]"


def decision_probability_table(
    delta_natural: xr.DataArray, decisions: pd.DataFrame, threshold: float | None = None
) -> pd.DataFrame:
    """R-hat, bulk ESS and MCSE of every decision probability, from its indicator draws.

    Parameters
    ----------
    delta_natural
        Posterior draws, dims ``(chain, draw, time, outcome)``.
    decisions
        The run's decisions.csv (margins, directions and the reported probabilities).
    threshold
        The decision threshold; when given, ``near_threshold`` flags probabilities of
        equivalence within 2 MCSE of a decision boundary (``p`` or ``1 - p`` near it).

    Returns
    -------
    pandas.DataFrame
        One row per (scope, time, outcome, event): ``quantity`` (a readable label), ``scope``,
        ``time``, ``outcome``, ``event``, ``mean`` (the probability: share of draws where the
        event holds; equals decisions.csv), ``mcse_mean`` (``az.mcse`` of the indicator),
        ``ess_bulk``, ``r_hat`` (rank-normalised split R-hat of the indicator), ``constant``
        (the indicator never varies: R-hat, ESS and MCSE undefined and NaN) and
        ``near_threshold``.
    """
    delta = delta_natural.transpose("chain", "draw", "time", "outcome")
    rows = []
    for (scope, event), indicator in indicator_draws(delta, decisions).items():
        rows += _indicator_rows(scope, event, indicator)
    table = pd.DataFrame(rows)
    reported = decisions[decisions["scope"] == "joint_time"]["time"].astype(float).tolist()
    table = table[(table["scope"] != "joint_time") | table["time"].isin(reported)].reset_index(drop=True)
    table["near_threshold"] = False
    if threshold is not None:
        eq = table["event"] == "prob_equivalence"
        p, mc = table.loc[eq, "mean"], table.loc[eq, "mcse_mean"]
        near = np.minimum(abs(p - threshold), abs((1 - p) - threshold)) < 2 * mc
        table.loc[eq, "near_threshold"] = near.to_numpy()
    return table


def _indicator_rows(scope: str, event: str, indicator: xr.DataArray) -> list[dict]:
    """One row per cell of an event's indicator draws: the share of draws where it holds, and the MCSE, bulk
    ESS and R-hat of the indicator (NaN where it never varies)."""
    x = indicator.astype(float)
    prob = x.mean(("chain", "draw"))
    constant = (x.max(("chain", "draw")) == x.min(("chain", "draw"))).values
    dims = [d for d in x.dims if d not in ("chain", "draw")]
    values = x.transpose("chain", "draw", *dims).values
    # az.rhat, az.ess(method="bulk") and az.mcse(method="mean"), every cell at once
    rhat, ess, mcse = (np.where(constant, np.nan, f(values)) for f in (mcmc_rhat, ess_bulk, mcse_mean))
    rows = []
    for idx in np.ndindex(*prob.shape) if prob.ndim else [()]:
        coords = {d: prob.coords[d].values[i] for d, i in zip(dims, idx, strict=True)}
        time = float(coords.get("time", np.nan))
        outcome = str(coords.get("outcome", "all"))
        row = {"quantity": _label(scope, event, time, outcome), "scope": scope, "time": time, "outcome": outcome}
        row |= {"event": event, "mean": float(prob.values[idx]), "mcse_mean": float(mcse[idx])}
        row |= {"ess_bulk": float(ess[idx]), "r_hat": float(rhat[idx]), "constant": bool(constant[idx])}
        rows.append(row)
    return rows


def near_threshold_note(decision_probs: pd.DataFrame | None) -> str:
    """ "" or a note naming the decisions within 2 MCSE of the threshold (more draws would settle them)."""
    if decision_probs is None or not len(decision_probs) or "near_threshold" not in decision_probs:
        return ""
    near = decision_probs[decision_probs["near_threshold"].fillna(False).astype(bool)]
    if not len(near):
        return ""
    return (
        f"{len(near)} decision(s) within 2 MCSE of the decision threshold (another seed could flip them; more "
        "draws would settle them): " + ", ".join(near["quantity"])
    )


@dataclass
class RunDiagnostics:
    """Everything ``diagnose`` and the report show, rebuilt from a saved run folder."""

    parameters: pd.DataFrame
    sampler: pd.DataFrame
    decision_probabilities: pd.DataFrame
    verdict: Verdict
    limits: Diagnostics


def load_run_diagnostics(run: str | Path) -> RunDiagnostics:
    """Read a run folder's diagnostics (``diagnostics.csv``, ``diagnostics_sampler.csv``), recompute
    the decision-probability diagnostics from ``posterior.nc`` and ``decisions.csv``, and the verdict
    with the thresholds recorded in ``manifest.json``. Reads nothing outside the folder.

    The run layer checks these files against the manifest's checksums first
    (:meth:`bayes_stenosis.run.RunFolder.diagnostics`); an unreadable one is still a one-line
    :class:`~bayes_stenosis.errors.RunFolderError` naming it here.
    """
    folder = Path(run)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise RunFolderError(folder / "manifest.json", f"unreadable ({exc})") from None
    params = read_run_table(folder / "diagnostics.csv")
    sampler_path = folder / "diagnostics_sampler.csv"
    if not sampler_path.is_file():
        raise RunFolderError(folder, "not a complete run folder: missing diagnostics_sampler.csv")
    sampler = read_run_table(sampler_path)
    limits = Diagnostics.model_validate(manifest["spec"]["content"]["diagnostics"])
    cached = folder / "diagnostics_decisions.csv"
    if cached.is_file():
        probs = read_run_table(cached)
    elif (folder / "decisions.csv").is_file():
        try:
            post = az.from_netcdf(str(folder / "posterior.nc")).posterior
        except Exception as exc:  # h5py / netCDF errors of a damaged file
            raise RunFolderError(folder / "posterior.nc", f"unreadable NetCDF ({exc})") from None
        probs = decision_probability_table(
            post["delta_natural"], read_run_table(folder / "decisions.csv"), manifest["decision_rule"]["threshold"]
        )
    else:
        probs = None
    return RunDiagnostics(
        parameters=params,
        sampler=sampler,
        decision_probabilities=probs if probs is not None else pd.DataFrame(),
        verdict=verdict(params, sampler, limits, probs),
        limits=limits,
    )


def read_run_table(path: Path) -> pd.DataFrame:
    """A CSV of a run folder; a one-line error naming it when it is missing or unreadable."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise RunFolderError(path, "missing") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise RunFolderError(path, f"unreadable CSV ({str(exc).splitlines()[0]}); the file is damaged") from None
