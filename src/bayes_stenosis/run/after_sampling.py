"""The steps of :func:`bayes_stenosis.run.fit_study` after sampling: the threshold statements' checks, the
diagnostics and the decisions of a fit's draws (each one call from ``fit_study``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayes_stenosis.diagnostics import decision_probability_table, parameter_table, sampler_table
from bayes_stenosis.inference import SamplerSettings, draw_prior_delta
from bayes_stenosis.run.priors import FitPriors, draw_statement_priors, statement_seeds
from bayes_stenosis.run.results import Results, decide, decision_rows
from bayes_stenosis.run.statements import statement_checks

if TYPE_CHECKING:
    import pymc as pm

    from bayes_stenosis.run.fit import PreparedFit


def check_statements(
    idata: az.InferenceData,
    model: pm.Model,
    forward_model: pm.Model,
    prepared: PreparedFit,
    settings: SamplerSettings,
    phase: Callable[[str], object],
    drawn: FitPriors | None = None,
) -> pd.DataFrame | None:
    """The threshold statements' prior and posterior predictive checks (model checks, not decisions), their
    replicates added to ``idata``; None for a model without statements. Their prior draws are ``drawn``'s
    when given."""
    if "threshold_noncentrality" not in model.named_vars:
        return None
    check_seed = statement_seeds(settings)[1]
    with phase("checking the reported statements against prior and posterior replicates"):
        prior_statements = drawn.statements if drawn is not None else None
        if prior_statements is None:
            prior_statements = draw_statement_priors(forward_model, settings)
        checks, replicates = statement_checks(idata, prior_statements, prepared.inputs, prepared.spec, check_seed)
    if replicates:
        add_statement_replicates(idata, replicates)
    return checks


class Decided(NamedTuple):
    """What :func:`diagnose_and_decide` gives a :class:`~bayes_stenosis.run.Fit` (the names of its fields)."""

    prior_delta_natural: xr.DataArray
    parameters: pd.DataFrame
    sampler_stats: pd.DataFrame
    decision_diagnostics: pd.DataFrame
    results: Results | None
    decisions: pd.DataFrame


def diagnose_and_decide(
    idata: az.InferenceData,
    forward_model: pm.Model,
    prepared: PreparedFit,
    settings: SamplerSettings,
    timings: dict[str, float],
    drawn: FitPriors | None = None,
    *,
    full_results: bool = True,
) -> Decided:
    """The prior draws of the decision table's prior column (``drawn``'s when given), the parameter and
    sampler diagnostics, the decisions, and the diagnostics of every decision probability (R-hat / ESS of
    its indicator draws), which the verdict also covers."""
    start = time.perf_counter()
    prior_delta = drawn.delta_natural if drawn is not None else draw_prior_delta(forward_model, settings)
    timings["prior_draws_decisions"] = time.perf_counter() - start
    start = time.perf_counter()
    params = parameter_table(idata)
    samp = sampler_table(idata)
    timings["diagnostics"] = time.perf_counter() - start
    start = time.perf_counter()
    provenance = {
        "seed": settings.seed,
        "spec_name": prepared.spec.name,
        "spec_sha256": prepared.spec_sha256,
        "prior_set": prepared.prior_set,
    }
    if full_results:
        results = decide(
            idata,
            prepared.study,
            prepared.inputs,
            prepared.spec,
            prior_delta,
            prior=prepared.prior,
            prior_set=prepared.prior_set,
            provenance=provenance,
        )
        decisions = results.decisions
    else:
        results = None
        decisions = decision_rows(idata, prepared.inputs, prepared.spec, prior_delta)
    timings["decisions"] = time.perf_counter() - start
    decision_diag = decision_probability_table(
        idata.posterior["delta_natural"], decisions, prepared.spec.decision.threshold
    )
    return Decided(prior_delta, params, samp, decision_diag, results, decisions)


def add_statement_replicates(idata: az.InferenceData, replicates: dict[str, xr.DataArray]) -> None:
    """The statements' posterior (and prior) predictive replicates, 1 = came out as reported, and the
    observed 1s: a threshold-only study has no observed random variable of its own."""
    post = replicates["posterior"]
    observed = xr.DataArray(
        np.ones(post.sizes["threshold_row"], dtype="int8"),
        dims=("threshold_row",),
        coords={"threshold_row": post.threshold_row},
    )
    groups = [("posterior_predictive", post), ("observed_data", observed)]
    if "prior" in replicates:
        groups.append(("prior_predictive", replicates["prior"]))
    for name, value in groups:
        if name in idata.groups():
            getattr(idata, name)["threshold_event"] = value
        else:
            idata.add_groups({name: xr.Dataset({"threshold_event": value})})
