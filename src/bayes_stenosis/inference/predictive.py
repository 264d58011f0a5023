"""Predictive draws: replicates of the observed data from prior or posterior draws, chunk by chunk.

Patient-level replicates (N x cells x draws) may not fit in memory whole: they are drawn in chunks of
draws and reduced to the summaries kept of them before the next chunk is drawn.
"""

from __future__ import annotations

from collections.abc import Callable

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr


def draws_per_chunk(model: pm.Model, observed: list[str], chains: int, budget_mb: float) -> int:
    """How many draws (per chain) of replicates of ``observed`` fit in ``budget_mb`` (float64)."""
    values_per_draw = sum(int(np.prod(model[name].shape.eval())) for name in observed)
    return max(1, int(budget_mb * 2**20 // (8 * chains * max(values_per_draw, 1))))


def chunked_predictive(
    draws: xr.Dataset,
    observed: list[str],
    summary: Callable[[xr.Dataset], xr.Dataset],
    chunk_draws: int,
    seed: int,
) -> tuple[xr.Dataset, xr.Dataset | None]:
    """Replicates of ``observed`` given parameter ``draws``, ``chunk_draws`` draws at a time.

    Must run inside the model context. ``draws`` are posterior or prior draws (dims chain, draw).
    Each chunk is reduced by ``summary`` before the next is drawn and has its own child seed of
    ``seed``. Returns the reduced replicates (concatenated along draw) and the observed data.
    """
    starts = range(0, draws.sizes["draw"], chunk_draws)
    chunk_seeds = np.random.SeedSequence(seed).spawn(len(starts))
    # PyMC redraws every variable that depends on a data container it cannot see unchanged in the
    # trace's constant_data (a bare Dataset has none): without this, Delta, whose prior
    # hyperparameters are data containers, would be redrawn from its prior in every replicate.
    model = pm.modelcontext(None)
    constant_data = xr.Dataset(
        {
            v.name: xr.DataArray(value, dims=[f"{v.name}_dim_{i}" for i in range(value.ndim)])
            for v in model.data_vars
            for value in [np.asarray(v.get_value())]
        }
    )
    parts, observed_data = [], None
    for start, child in zip(starts, chunk_seeds, strict=True):
        ppc = pm.sample_posterior_predictive(
            az.InferenceData(posterior=draws.isel(draw=slice(start, start + chunk_draws)), constant_data=constant_data),
            random_seed=int(child.generate_state(1)[0]),
            progressbar=False,
            var_names=observed,
        )
        parts.append(summary(ppc.posterior_predictive))
        if observed_data is None and "observed_data" in ppc.groups():
            observed_data = ppc.observed_data
        del ppc  # else the next chunk is drawn while this one is still held (twice the memory)
    return xr.concat(parts, dim="draw"), observed_data


def add_threshold_predictive(idata: az.InferenceData, seed: int) -> None:
    """Threshold statements are events: their replicate is Bernoulli(P(event)), observed 1.

    The pointwise log-likelihood of a statement is its log P(event) (``threshold_log_prob``).
    """
    if "threshold_log_prob" not in idata.posterior:
        return
    log_prob = idata.posterior["threshold_log_prob"]
    rng = np.random.default_rng(seed + 1)  # a stream distinct from PyMC's replicate draws
    replicate = (rng.random(log_prob.shape) < np.exp(log_prob.values)).astype("int8")
    event = xr.DataArray(replicate, dims=log_prob.dims, coords=log_prob.coords, name="threshold_event")
    observed = xr.DataArray(
        np.ones(log_prob.sizes["threshold_row"], dtype="int8"),
        dims=("threshold_row",),
        coords={"threshold_row": log_prob.coords["threshold_row"]},
    )
    groups = {
        "posterior_predictive": xr.Dataset({"threshold_event": event}),
        "log_likelihood": xr.Dataset({"threshold_event": log_prob.rename("threshold_event")}),
        "observed_data": xr.Dataset({"threshold_event": observed}),
    }
    for name, dataset in groups.items():
        if name in idata.groups():
            getattr(idata, name)["threshold_event"] = dataset["threshold_event"]
        else:
            idata.add_groups({name: dataset})


def add_threshold_prior_predictive(idata: az.InferenceData, seed: int) -> None:
    """The prior predictive of threshold statements: replicate ~ Bernoulli(P(event)) per prior draw.

    A study whose only evidence is "P<alpha / P>alpha" statements has no observed random variables (its
    likelihood is a Potential), so PyMC draws no prior predictive; this gives it one, like
    :func:`add_threshold_predictive` does for the posterior.
    """
    if "prior" not in idata.groups() or "threshold_log_prob" not in idata.prior:
        return
    log_prob = idata.prior["threshold_log_prob"]
    rng = np.random.default_rng(seed + 1)  # a stream distinct from PyMC's prior draws
    replicate = (rng.random(log_prob.shape) < np.exp(log_prob.values)).astype("int8")
    event = xr.DataArray(replicate, dims=log_prob.dims, coords=log_prob.coords, name="threshold_event")
    if "prior_predictive" in idata.groups():
        idata.prior_predictive["threshold_event"] = event
    else:
        idata.add_groups(prior_predictive=xr.Dataset({"threshold_event": event}))
