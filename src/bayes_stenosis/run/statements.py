"""Model checks for threshold statements: how probable the reported statements are, one by one and as a set.

A study known from "P>0.05 / P<0.05" statements has no data to plot against replicates; what can be
checked is whether the model makes the reported statements probable. For each statement and for the
whole set, :func:`statement_checks` simulates replicate statements from the model's joint generative
process (:func:`bayes_stenosis.model.simulate_study_statement_statistics`: the statistics correlated as
in the likelihood, every statement jointly or the between-arm ones jointly) and counts how often they
come out as reported:

* under the **prior** (prior predictive): a small probability of the whole set is a prior-data
  conflict, the prior and the abstract disagree;
* under the **posterior** (posterior predictive): the fitted model's own check.

The per-statement probabilities are marginals; the joint likelihood that was fitted is that of the
set, so per-statement values are not a pointwise log-likelihood and LOO is not offered for them.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayes_stenosis.model import (
    STATEMENT_VARIABLES,
    ModelInputs,
    simulate_study_statement_statistics,
    statement_reproduced,
    threshold_design,
)
from bayes_stenosis.spec import ModelSpec
from bayes_stenosis.stats.mcmc import mcse_mean

#: Forward prior draws of the statements' parameters, and replicate statement sets per parameter draw.
#: The set is rare under the prior (flagship: ~0.003) and its replicates cluster in a few favourable
#: draws: 1,000 prior draws x 20 replicates gave 0.0014 against 0.0029 from 40,000 draws.
PRIOR_DRAWS = 20_000
PRIOR_REPLICATES = 5
POSTERIOR_REPLICATES = 5


def statement_text(rec: dict) -> str:
    """A reported statement in words, e.g. ``"between arms: P>0.05"``."""
    where = "between arms" if rec["comparison"] == "between" else f"within {rec['arm']}"
    side = f" ({rec['direction'].replace('_', ' ')})" if isinstance(rec.get("direction"), str) else ""
    return f"{where}: P{rec['relation']}{rec['alpha']:g}{side}"


def _reproduced(
    group: xr.Dataset, inputs: ModelInputs, spec: ModelSpec, rng: np.random.Generator, replicates: int
) -> np.ndarray:
    """Replicates of every statement, shape ``(chain, draw, replicate, row)``."""
    chains, draws = group.sizes["chain"], group.sizes["draw"]
    values = {}
    for name in STATEMENT_VARIABLES:
        if name in group:
            arr = group[name].transpose("chain", "draw", ...).values
            values[name] = arr.reshape(chains * draws, *arr.shape[2:])
    t_stat = simulate_study_statement_statistics(values, inputs, spec, rng, replicates)
    events = statement_reproduced(t_stat, threshold_design(inputs, spec))
    return events.reshape(chains, draws, replicates, -1)


def _share_and_mcse(per_draw: np.ndarray) -> tuple[float, float]:
    """Mean of per-draw shares (chain, draw) and its MCSE (``az.mcse``'s; NaN when constant)."""
    prob = float(per_draw.mean())
    if np.ptp(per_draw) == 0 or per_draw.shape[1] < 4:
        return prob, np.nan
    return prob, float(mcse_mean(per_draw))


def _probabilities(events: np.ndarray, between: np.ndarray) -> list[tuple[float, float]]:
    """Per statement, then all statements, then all between-arm statements: (probability, MCSE)."""
    columns = [events[..., k] for k in range(events.shape[-1])]
    columns.append(events.all(axis=-1))
    columns.append(events[..., between].all(axis=-1) if len(between) else np.full(events.shape[:-1], np.nan))
    return [_share_and_mcse(c.mean(axis=2)) if not np.isnan(c).any() else (np.nan, np.nan) for c in columns]


def statement_checks(
    idata: az.InferenceData, prior: xr.Dataset | None, inputs: ModelInputs, spec: ModelSpec, seed: int
) -> tuple[pd.DataFrame | None, dict[str, xr.DataArray]]:
    """Prior and posterior predictive probabilities of each reported statement and of the whole set.

    ``prior``: forward prior draws of :data:`STATEMENT_VARIABLES` (``PRIOR_DRAWS`` of them), or None.

    Returns
    -------
    table, replicates
        ``statement_checks.csv`` (one row per statement, then ``all statements`` and ``all between-arm
        statements``; columns ``prob_reproduced_prior``, ``prob_reproduced_posterior`` and their MCSE),
        and for the InferenceData one replicate per draw (1 = the statement came out as reported) of the
        ``posterior`` and, where the prior group holds the statements' parameters, of the ``prior``.
        ``(None, {})`` for a study without statements.
    """
    design = threshold_design(inputs, spec)
    if not len(design) or "threshold_noncentrality" not in idata.posterior:
        return None, {}
    prior_rng, posterior_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    between = np.flatnonzero((design["comparison"] == "between").to_numpy())
    post_events = _reproduced(idata.posterior, inputs, spec, posterior_rng, POSTERIOR_REPLICATES)
    post = _probabilities(post_events, between)
    prior_probs = [(np.nan, np.nan)] * len(post)
    if prior is not None and "threshold_noncentrality" in prior:
        prior_probs = _probabilities(_reproduced(prior, inputs, spec, prior_rng, PRIOR_REPLICATES), between)
    records = inputs.thresholds.set_index("row").loc[design["row"]].reset_index().to_dict("records")
    rows = [
        {
            "scope": "statement",
            "row": int(rec["row"]),
            "time": float(rec["time"]),
            "outcome": rec["outcome"],
            "statement": statement_text(rec),
        }
        for rec in records
    ]
    rows.append({"scope": "all statements", "statement": f"all {len(design)} statements together"})
    rows.append({"scope": "all between-arm statements", "statement": f"the {len(between)} between-arm statements"})
    table = pd.DataFrame(rows)
    table["prob_reproduced_prior"] = [p for p, _ in prior_probs]
    table["mcse_prob_reproduced_prior"] = [m for _, m in prior_probs]
    table["prob_reproduced_posterior"] = [p for p, _ in post]
    table["mcse_prob_reproduced_posterior"] = [m for _, m in post]
    replicates = {"posterior": _first_replicate(post_events, idata.posterior)}
    if "prior" in idata.groups() and "threshold_noncentrality" in idata.prior:
        replicates["prior"] = _first_replicate(_reproduced(idata.prior, inputs, spec, prior_rng, 1), idata.prior)
    return table, replicates


def _first_replicate(events: np.ndarray, group: xr.Dataset) -> xr.DataArray:
    """One replicate per draw as an int8 DataArray (chain, draw, threshold_row)."""
    return xr.DataArray(
        events[:, :, 0, :].astype("int8"),
        dims=("chain", "draw", "threshold_row"),
        coords={
            "chain": group.chain,
            "draw": group.draw,
            "threshold_row": group["threshold_noncentrality"].threshold_row,
        },
        name="threshold_event",
    )
