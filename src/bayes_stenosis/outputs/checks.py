"""Numbers the report computes from ``posterior.nc``: how far the data moved the prior, what the prior
predicts, and observed vs replicated data (predictive checks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bayes_stenosis.outputs.predictive import item_labels, to_natural_units
from bayes_stenosis.outputs.tables import read_csv_or_none


def prior_vs_posterior(idata) -> pd.DataFrame | None:
    """Per cell: prior and posterior SD of delta (natural units) and their ratio (how much the data
    narrowed the prior: 1 = the data added nothing)."""
    if "prior" not in idata.groups() or "delta_natural" not in idata.prior:
        return None
    post, prior = idata.posterior["delta_natural"], idata.prior["delta_natural"]
    rows = []
    for t in post.coords["time"].values:
        for o in post.coords["outcome"].values:
            p = post.sel(time=t, outcome=o).values.ravel()
            q = prior.sel(time=t, outcome=o).values.ravel()
            # robust spread: the Student-t prior has heavy tails, so use the 95 % central width
            wp = float(np.subtract(*np.quantile(p, [0.975, 0.025])))
            wq = float(np.subtract(*np.quantile(q, [0.975, 0.025])))
            rows.append(
                {
                    "time": float(t),
                    "outcome": str(o),
                    "prior_95_width": wq,
                    "posterior_95_width": wp,
                    "width_ratio": wp / wq if wq > 0 else np.nan,
                }
            )
    return pd.DataFrame(rows)


def prior_predictive_ranges(idata, study_toml: dict, units: dict[str, str]) -> pd.DataFrame | None:
    """Prior predictive change from baseline per outcome vs the range the scale allows (BARG 1E)."""
    if "prior" not in idata.groups() or "change_natural" not in idata.prior:
        return None
    change = idata.prior["change_natural"]
    rows = []
    for o in change.coords["outcome"].values:
        spec = study_toml.get("outcomes", {}).get(str(o), {})
        lo, hi = spec.get("scale_min"), spec.get("scale_max")
        x = change.sel(outcome=o).values.ravel()
        width = (hi - lo) if lo is not None and hi is not None else np.nan
        rows.append(
            {
                "outcome": str(o),
                "unit": units.get(str(o), ""),
                "prior_change_2.5%": float(np.quantile(x, 0.025)),
                "prior_change_50%": float(np.quantile(x, 0.5)),
                "prior_change_97.5%": float(np.quantile(x, 0.975)),
                "possible_change": f"-{width:g} to +{width:g}" if np.isfinite(width) else "",
                "share_impossible": float(np.mean(np.abs(x) > width)) if np.isfinite(width) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def ppc_table(idata, folder: Path) -> pd.DataFrame | None:
    """Observed value, replicate median and 95 % interval, and P(replicate >= observed) per element;
    for threshold statements P(event) under the posterior and under the prior."""
    labels = read_csv_or_none(folder / "observed_quantities.csv")
    rows = []
    if "posterior_predictive" in idata.groups() and "observed_data" in idata.groups():
        for var in idata.posterior_predictive.data_vars:
            if var == "threshold_event" or var not in idata.observed_data:
                continue
            obs = idata.observed_data[var].values.ravel()
            rep = idata.posterior_predictive[var].values.reshape(-1, obs.size)
            items = item_labels(var, obs.size, labels, list(range(obs.size)))
            for i, it in enumerate(items):
                r = to_natural_units(rep[:, i], it["transform"], it["scale"])
                o = float(to_natural_units(np.array(obs[i]), it["transform"], it["scale"]))
                rows.append(
                    {
                        "quantity": it["label"],
                        "unit": it.get("unit", ""),
                        "observed": o,
                        "replicate_median": float(np.median(r)),
                        "replicate_2.5%": float(np.quantile(r, 0.025)),
                        "replicate_97.5%": float(np.quantile(r, 0.975)),
                        "P(rep >= obs)": float(np.mean(r >= o)),
                    }
                )
    if "threshold_log_prob" in idata.posterior:
        lp = idata.posterior["threshold_log_prob"]
        coords = lp.coords["threshold_row"].values
        items = item_labels("threshold_event", len(coords), labels, coords)
        post = np.exp(lp).mean(("chain", "draw")).values
        prior = (
            np.exp(idata.prior["threshold_log_prob"]).mean(("chain", "draw")).values
            if "prior" in idata.groups() and "threshold_log_prob" in idata.prior
            else np.full(len(coords), np.nan)
        )
        for it, p, q in zip(items, post, prior, strict=True):
            rows.append(
                {
                    "quantity": it["label"],
                    "unit": "event",
                    "observed": 1.0,
                    "P(event), posterior": float(p),
                    "P(event), prior": float(q),
                }
            )
    return pd.DataFrame(rows) if rows else None
