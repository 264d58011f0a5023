"""Fit a study in memory: validate -> prepare inputs -> build the model -> sample -> diagnose -> decide.

:func:`fit_study` is the one fit pipeline: ``bayes-stenosis fit`` (through :func:`write_run`) and the
sensitivity sweep call it (the calibration studies refit simulated data into one compile through
``inference.CompiledModel`` instead). It writes nothing; :func:`Fit` holds everything a run folder is
made of.
"""

from __future__ import annotations

import functools
import hashlib
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import arviz as az
import pandas as pd
import xarray as xr

from bayes_stenosis.diagnostics import (
    Verdict,
    verdict,
)
from bayes_stenosis.errors import InputError
from bayes_stenosis.inference import CompileCache, SamplerSettings, phases, sample
from bayes_stenosis.inference.background import BackgroundWork, DoneWork, load_c_module_index, start_in_background
from bayes_stenosis.model import (
    ModelInputs,
    build_model,
    predictive_model,
    prepare_inputs,
    prior_sampling_model,
    resolve_prior,
)
from bayes_stenosis.model.terms.ipd import ipd_observed_summary, ipd_predictive_summary
from bayes_stenosis.resources import resolve_spec
from bayes_stenosis.run.after_sampling import check_statements, diagnose_and_decide
from bayes_stenosis.run.idata import tidy_inference_data
from bayes_stenosis.run.priors import draw_fit_priors
from bayes_stenosis.run.results import Results
from bayes_stenosis.spec import ModelSpec, ResolvedPrior, load_spec
from bayes_stenosis.study import Study, load_study

if TYPE_CHECKING:
    import pymc as pm


class DiagnosticsWarning(UserWarning):
    """A fit whose convergence diagnostics failed (its numbers are not to be trusted as they stand)."""


@dataclass
class Fit:
    """One fitted study, in memory: what :func:`bayes_stenosis.run.write_run` writes to a run folder.

    Attributes
    ----------
    study, spec, prior_set, prior, inputs, settings
        What was fitted: the validated study, the model spec, the name and resolved form of the prior
        set on the treatment difference, the model inputs and the sampler settings (with the seed).
    spec_path, spec_sha256
        The spec's TOML file (None for a spec built in memory) and the SHA-256 of its content.
    margin_overrides
        Margins given on the command line instead of the study's (outcome -> natural units).
    idata
        The InferenceData (posterior, prior, predictive groups, sample stats).
    prior_delta_natural
        ``settings.prior_draws_decisions`` prior draws of delta (natural units): the decision table's
        prior column.
    parameters, sampler_stats, decision_diagnostics
        R-hat / ESS / MCSE per parameter, sampler health per chain, and R-hat / ESS of every decision
        probability's indicator draws.
    results
        Contrasts, decision table, margin curves, normal approximation, draws; None for a fit made with
        ``full_results=False`` (a sweep's).
    decision_table
        The decision table of a fit made with ``full_results=False``; None otherwise (it is
        ``results.decisions``). Read either through :attr:`decisions`.
    statement_checks
        Threshold statements: prior and posterior predictive probability of each reported statement and
        of the whole set (:func:`bayes_stenosis.run.statements.statement_checks`); None without statements.
    verdict
        The diagnostics verdict (ok / warning / fail, with reasons).
    timings
        Seconds per phase.
    """

    study: Study
    spec: ModelSpec
    spec_path: Path | None
    spec_sha256: str
    prior_set: str
    prior: ResolvedPrior
    inputs: ModelInputs
    settings: SamplerSettings
    margin_overrides: dict[str, float]
    idata: az.InferenceData
    prior_delta_natural: xr.DataArray
    parameters: pd.DataFrame
    sampler_stats: pd.DataFrame
    decision_diagnostics: pd.DataFrame
    results: Results | None
    verdict: Verdict
    timings: dict[str, float]
    statement_checks: pd.DataFrame | None = None
    decision_table: pd.DataFrame | None = None

    @property
    def decisions(self) -> pd.DataFrame:
        """The decision table (``decisions.csv``)."""
        return self.results.decisions if self.results is not None else self.decision_table

    @property
    def contrasts(self) -> pd.DataFrame:
        """The posterior treatment differences (``contrasts.csv``)."""
        if self.results is None:
            raise ValueError("a fit made with full_results=False has no contrasts table")
        return self.results.contrasts


def load_model_spec(spec: str | Path | ModelSpec) -> tuple[ModelSpec, Path | None, str]:
    """A spec from a bundled name, a TOML path, or an in-memory :class:`ModelSpec`: (spec, path, sha256)."""
    if isinstance(spec, ModelSpec):
        return spec, None, hashlib.sha256(spec.model_dump_json().encode()).hexdigest()
    loaded, sha = load_spec(spec)
    return loaded, resolve_spec(spec), sha


@dataclass(frozen=True)
class PreparedFit:
    """A study checked and turned into model inputs: everything :func:`fit_study` checks before sampling."""

    study: Study
    spec: ModelSpec
    spec_path: Path | None
    spec_sha256: str
    prior_set: str
    prior: ResolvedPrior
    inputs: ModelInputs


def prepare_fit(
    study: Study | str | Path = "farpour2022",
    *,
    spec: str | Path | ModelSpec = "default",
    prior_set: str | None = None,
    margins: dict[str, float] | None = None,
) -> PreparedFit:
    """Load and check a study against a spec as a fit would, without building or sampling a model.

    ``bayes-stenosis data validate`` runs this, so a study that validates is a study that fits
    (scales, margins, directions, arm sizes, the prior set, usable evidence).

    Raises
    ------
    InputError
        The first problem found, naming the file and field.
    """
    loaded = study if isinstance(study, Study) else load_study(study)
    model_spec, spec_path, spec_sha = load_model_spec(spec)
    prior_name = prior_set or model_spec.prior.default
    inputs = prepare_inputs(loaded, model_spec, margins)
    prior = resolve_prior(model_spec, prior_name, inputs)
    if (inputs.evidence_by_cell.evidence == "none").all():
        raise InputError(
            loaded.folder,
            "no usable evidence: every cell lacks arm summaries, contrasts or threshold statements "
            f"(run: bayes-stenosis data validate {loaded.folder})",
        )
    return PreparedFit(loaded, model_spec, spec_path, spec_sha, prior_name, prior, inputs)


def fit_study(
    study: Study | str | Path = "farpour2022",
    *,
    spec: str | Path | ModelSpec = "default",
    prior_set: str | None = None,
    seed: int | None = None,
    chains: int | None = None,
    draws: int | None = None,
    tune: int | None = None,
    sampler: str | None = None,
    margins: dict[str, float] | None = None,
    progress: bool = False,
    status: Callable[[str], object] | None = None,
    compiled: CompileCache | None = None,
    posterior_predictive: bool = True,
    prior_var_names: Sequence[str] | None = None,
    background_prior: bool = False,
    full_results: bool = True,
) -> Fit:
    """Fit a study and decide, in memory.

    Everything that changes results (spec, prior set, margins, sampler settings, seed, interval
    convention, decision threshold) comes from the spec or the arguments, and is kept in the
    returned :class:`Fit` (and so in a run's manifest).

    Parameters
    ----------
    study
        A loaded :class:`Study`, a bundled study id or a study folder.
    spec
        A bundled spec name, a TOML path or a :class:`ModelSpec`.
    prior_set
        The prior set on the treatment difference (default: the spec's ``[prior] default``).
    seed, chains, draws, tune, sampler
        Override the spec's ``[sampler]`` table.
    margins
        Equivalence margins (outcome -> natural units) instead of the study's.
    progress, status
        The sampler's progress bar; a callback returning a context manager per phase.
    compiled
        Reuse nutpie compiles across fits of one model structure (a sweep passes one cache).
    posterior_predictive
        Draw the posterior predictive and log-likelihood, and check threshold statements (a sweep that
        only decides skips them).
    prior_var_names
        Variables of the prior group (default: all; empty: no prior group, as in a sweep, whose decision
        tables use their own prior draws of delta).
    background_prior
        Make every prior draw (prior predictive, the statement checks' and the decision table's) in a
        forked process started before the compile, in parallel with the compile and the sampling
        (:mod:`bayes_stenosis.run.priors`; where ``fork`` is missing, here). The same numbers either
        way; ``bayes-stenosis fit`` does it.
    full_results
        Contrasts, margin curves, normal approximations and contrast draws besides the decision table
        (:func:`bayes_stenosis.run.decide`); a sweep, which tabulates its own decisions per margin set,
        passes False and gets the decision table only (``Fit.results`` None; a third of a sweep fit's work
        outside sampling).

    Raises
    ------
    InputError
        Bad study, spec or options, or a study with no usable evidence; before any sampling.
    """
    t_start = time.perf_counter()
    prepared = prepare_fit(study, spec=spec, prior_set=prior_set, margins=margins)
    settings = _sampler_settings(prepared.spec, seed=seed, chains=chains, draws=draws, tune=tune, sampler=sampler)
    timings: dict[str, float] = {"validate_and_prepare": time.perf_counter() - t_start}
    model, forward_model, idata, priors = _build_and_sample(
        prepared,
        settings,
        timings,
        progress=progress,
        status=status,
        compiled=compiled,
        prior_var_names=prior_var_names,
        posterior_predictive=posterior_predictive,
        background_prior=background_prior,
    )
    drawn = None if priors is None else priors.result()
    if drawn is not None:  # the seconds the parallel process took for each
        timings.update({f"{name}_in_background": seconds for name, seconds in drawn.timings.items()})
    phase = phases(status)
    checks = None
    if posterior_predictive:
        checks = check_statements(idata, model, forward_model, prepared, settings, phase, drawn)
    # no sampler-internal variables, every dimension named, units: what posterior.nc holds (no draw changes)
    tidy_inference_data(idata, prepared.study, prepared.inputs, prepared.spec)
    with phase("prior draws for the decision table, diagnostics and decisions"):
        prior_delta, params, samp, decision_diag, results, decisions = diagnose_and_decide(
            idata, forward_model, prepared, settings, timings, drawn, full_results=full_results
        )
    timings["fit_total"] = time.perf_counter() - t_start
    verdict_ = verdict(params, samp, prepared.spec.diagnostics, decision_diag)
    if verdict_.status == "fail":  # a notebook user sees it without asking for fit.verdict
        warnings.warn(
            f"{prepared.study.id}: the diagnostics failed: {verdict_.line()}", DiagnosticsWarning, stacklevel=2
        )
    return Fit(
        study=prepared.study,
        spec=prepared.spec,
        spec_path=prepared.spec_path,
        spec_sha256=prepared.spec_sha256,
        prior_set=prepared.prior_set,
        prior=prepared.prior,
        inputs=prepared.inputs,
        settings=settings,
        margin_overrides=dict(margins or {}),
        idata=idata,
        prior_delta_natural=prior_delta,
        parameters=params,
        sampler_stats=samp,
        decision_diagnostics=decision_diag,
        results=results,
        verdict=verdict_,
        timings=timings,
        statement_checks=checks,
        decision_table=None if results is not None else decisions,  # one copy: results holds a full fit's
    )


def _sampler_settings(
    spec: ModelSpec, *, seed: int | None, chains: int | None, draws: int | None, tune: int | None, sampler: str | None
) -> SamplerSettings:
    """The spec's ``[sampler]`` table with the arguments that are given in place of its values; the
    sampler checked to be nutpie or pymc."""
    settings = SamplerSettings.from_spec(spec.sampler, seed=seed, chains=chains, draws=draws, tune=tune, name=sampler)
    if settings.name not in ("nutpie", "pymc"):
        raise InputError(None, f"--sampler must be nutpie or pymc (got {settings.name!r})")
    return settings


def _build_and_sample(
    prepared: PreparedFit,
    settings: SamplerSettings,
    timings: dict[str, float],
    *,
    progress: bool,
    status: Callable[[str], object] | None,
    compiled: CompileCache | None,
    prior_var_names: Sequence[str] | None,
    posterior_predictive: bool,
    background_prior: bool,
) -> tuple[pm.Model, pm.Model, az.InferenceData, BackgroundWork | DoneWork | None]:
    """Build the model, its forward-sampling form (:func:`prior_sampling_model`) and the form the posterior
    predictive and pointwise log-likelihood are drawn from (:func:`predictive_model`), and sample them
    (:func:`bayes_stenosis.inference.sample`); the phases' seconds go to ``timings``. With
    ``background_prior``, every prior draw of the fit is started in a parallel process before the compile
    (returned: its :class:`~bayes_stenosis.run.priors.FitPriors` when done)."""
    inputs = prepared.inputs
    start = time.perf_counter()
    model = build_model(inputs, prepared.spec, prepared.prior)
    forward_model = prior_sampling_model(inputs, prepared.spec, prepared.prior, model)
    replicating = predictive_model(inputs, prepared.spec, prepared.prior, model) if posterior_predictive else None
    timings["build"] = time.perf_counter() - start
    arms = list(inputs.coords["arm"])
    reduce_replicates = None
    if inputs.ipd is not None:  # per-cell summaries instead of N x cells replicates, chunk by chunk (memory)
        reduce_replicates = functools.partial(ipd_predictive_summary, ipd=inputs.ipd, arms=arms)
    priors = None
    if background_prior:
        with_statements = posterior_predictive and "threshold_noncentrality" in model.named_vars
        work = functools.partial(
            draw_fit_priors,
            forward_model,
            settings,
            with_prior=True,
            with_statements=with_statements,
            prior_var_names=prior_var_names,
            predictive_summary=reduce_replicates,
        )
        if replicating is not None and replicating.observed_RVs:
            # both processes compile C functions (the child its prior draws, this one the posterior
            # predictive): read once here, inherited by the child. Otherwise (a study known from threshold
            # statements) only the child compiles any: it reads the index itself, beside the sampling.
            with phases(status)("reading pytensor's index of compiled C modules (once, for both processes)"):
                load_c_module_index()
        priors = start_in_background(work)
    idata, sample_timings = sample(
        model,
        settings,
        progress=progress,
        status=status,
        predictive_summary=reduce_replicates,
        prior_model=forward_model,
        compiled=compiled,
        prior_var_names=prior_var_names,
        posterior_predictive=posterior_predictive,
        predictive_model=replicating,
        prior_draws=None if priors is None else (lambda: priors.result().prior),
    )
    timings.update(sample_timings)
    if inputs.ipd is not None and posterior_predictive:  # the data's summaries, beside the replicates
        idata.observed_data = idata.observed_data.assign(ipd_observed_summary(inputs.ipd, arms))
    return model, forward_model, idata, priors
