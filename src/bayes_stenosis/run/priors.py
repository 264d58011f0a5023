"""A fit's prior draws, all in one call: the prior and prior predictive (``posterior.nc``), the statement
checks' prior draws and the decision table's prior draws of delta.

None of them depends on the posterior: each has its own child stream of the run seed
(:meth:`bayes_stenosis.inference.SamplerSettings.seeds`). :func:`bayes_stenosis.run.fit.fit_study`
starts :func:`draw_fit_priors` in a parallel process before the compile (``background_prior``), so that
they are drawn while the posterior is sampled, or calls it in its own process; the numbers are the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

from bayes_stenosis.inference import SamplerSettings, draw_prior, draw_prior_delta, draw_prior_variables
from bayes_stenosis.run.statements import PRIOR_DRAWS as PRIOR_STATEMENT_DRAWS
from bayes_stenosis.run.statements import STATEMENT_VARIABLES


@dataclass
class FitPriors:
    """The prior draws of one fit (see the module docstring), with the seconds each took."""

    prior: az.InferenceData | None
    statements: xr.Dataset | None
    delta_natural: xr.DataArray
    timings: dict[str, float] = field(default_factory=dict)


def statement_seeds(settings: SamplerSettings) -> tuple[int, int]:
    """The statement checks' two seeds: their prior draws' and the replicates' (one child stream)."""
    draw_seed, check_seed = np.random.SeedSequence(settings.seeds()["statement_checks"]).generate_state(2)
    return int(draw_seed), int(check_seed)


def draw_statement_priors(forward_model: pm.Model, settings: SamplerSettings) -> xr.Dataset:
    """The prior draws of the statement checks (the statements' noncentralities and correlations)."""
    names = [n for n in STATEMENT_VARIABLES if n in forward_model.named_vars]
    return draw_prior_variables(forward_model, names, PRIOR_STATEMENT_DRAWS, statement_seeds(settings)[0])


def draw_fit_priors(
    forward_model: pm.Model,
    settings: SamplerSettings,
    *,
    with_prior: bool,
    with_statements: bool,
    prior_var_names: Sequence[str] | None = None,
    predictive_summary: Callable[[xr.Dataset], xr.Dataset] | None = None,
) -> FitPriors:
    """Every prior draw of a fit: the prior group (``with_prior``, as ``inference.sample`` would draw it),
    the statement checks' prior draws (``with_statements``) and the decision table's draws of delta."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    prior = None
    if with_prior:
        prior = draw_prior(forward_model, settings, var_names=prior_var_names, predictive_summary=predictive_summary)
    timings["prior_predictive"] = time.perf_counter() - start
    start = time.perf_counter()
    statements = draw_statement_priors(forward_model, settings) if with_statements else None
    timings["prior_draws_statements"] = time.perf_counter() - start
    start = time.perf_counter()
    delta = draw_prior_delta(forward_model, settings)
    timings["prior_draws_decisions"] = time.perf_counter() - start
    return FitPriors(prior, statements, delta, timings)
