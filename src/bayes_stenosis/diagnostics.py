"""Convergence diagnostics: R-hat, bulk/tail ESS and MCSE per quantity, sampler health, a verdict.

Thresholds come from the spec's ``[diagnostics]`` table (DESIGN section 8: R-hat <= 1.01, bulk and
tail ESS >= 400, no divergences) and are written next to the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd

from bayes_stenosis.spec import Diagnostics

#: Posterior variables summarised in diagnostics.csv (those present in a run).
REPORTED_VARS = (
    "Delta",
    "delta",
    "delta_natural",
    "change_natural",
    "mu_change",
    "sigma_change",
    "tau",
    "rho",
    "r_time",
    "trial_sd_ratio",
    "change_sd_ratio",
)


def _free_and_reported(idata: az.InferenceData) -> list[str]:
    names = [v for v in REPORTED_VARS if v in idata.posterior]
    others = [
        v for v in idata.posterior.data_vars if v not in names and not v.startswith("z_") and v != "threshold_log_prob"
    ]
    return names + others


def parameter_table(idata: az.InferenceData, var_names: list[str] | None = None) -> pd.DataFrame:
    """R-hat, bulk/tail ESS, MCSE of mean and SD for every parameter and derived quantity."""
    names = var_names or _free_and_reported(idata)
    summary = az.summary(idata, var_names=names, kind="all", round_to="none", fmt="wide")
    summary.index.name = "quantity"
    return summary.reset_index()


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


def verdict(params: pd.DataFrame, sampler: pd.DataFrame, limits: Diagnostics) -> Verdict:
    """ok / warning / fail with the reasons; failures are reported, never hidden."""
    reasons, status = [], "ok"
    thresholds = (
        f"R-hat <= {limits.max_rhat}, bulk ESS >= {limits.min_ess_bulk:g}, tail ESS >= {limits.min_ess_tail:g}, "
        f"divergences <= {limits.max_divergences}, E-BFMI >= 0.3 (warning), tree-depth saturation < 1% (warning)"
    )
    finite = params.dropna(subset=["r_hat"])

    def worst(col, largest):
        row = finite.loc[finite[col].idxmax() if largest else finite[col].idxmin()]
        return row["quantity"], row[col]

    if len(finite):
        q, v = worst("r_hat", True)
        if v > limits.max_rhat:
            status = "fail"
            reasons.append(f"max R-hat {v:.3f} ({q})")
        q, v = worst("ess_bulk", False)
        if v < limits.min_ess_bulk:
            status = "fail"
            reasons.append(f"min bulk ESS {v:.0f} ({q})")
        q, v = worst("ess_tail", False)
        if v < limits.min_ess_tail:
            status = "fail"
            reasons.append(f"min tail ESS {v:.0f} ({q})")
    n_div = int(np.nansum(sampler["divergences"]))
    if n_div > limits.max_divergences:
        status = "fail"
        reasons.append(f"{n_div} divergent transitions")
    if (sampler["ebfmi"] < 0.3).any():
        status = "fail" if status == "fail" else "warning"
        reasons.append(f"low E-BFMI in chain(s) {list(sampler.loc[sampler['ebfmi'] < 0.3, 'chain'])}")
    if (sampler["treedepth_saturation_fraction"] > 0.01).any():
        status = "fail" if status == "fail" else "warning"
        reasons.append("tree depth saturated in > 1% of draws")
    return Verdict(status=status, reasons=reasons, thresholds=thresholds)
