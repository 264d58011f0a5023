"""Sampling: one function, an explicit sampler, one seed for every random step.

:func:`sample` draws the prior (and prior predictive), the posterior and the posterior predictive with
the log-likelihood, each from its own child stream of the run seed (:meth:`SamplerSettings.seeds`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

from bayes_stenosis.inference.compiled import PROCESS_COMPILES, CompileCache, nutpie_sample, structure_key
from bayes_stenosis.inference.forward import forward_draws, quiet_forward_sampling
from bayes_stenosis.inference.predictive import chunked_predictive, draws_per_chunk
from bayes_stenosis.inference.settings import SamplerSettings
from bayes_stenosis.model import check_forward_sampling


def phases(status: Callable[[str], object] | None) -> Callable[[str], object]:
    """``status`` (a callable returning a context manager per phase of a command), or one that shows nothing."""
    return status or (lambda _message: nullcontext())


def sample(
    model: pm.Model,
    settings: SamplerSettings,
    *,
    progress: bool = True,
    status: Callable[[str], object] | None = None,
    predictive_summary: Callable[[xr.Dataset], xr.Dataset] | None = None,
    predictive_chunk_mb: float = 256.0,
    prior_model: pm.Model | None = None,
    compiled: CompileCache | None = None,
    prior_var_names: Sequence[str] | None = None,
    posterior_predictive: bool = True,
    predictive_model: pm.Model | None = None,
    prior_draws: Callable[[], az.InferenceData] | None = None,
) -> tuple[az.InferenceData, dict[str, float]]:
    """Sample prior predictive, posterior and posterior predictive; attach log-likelihoods.

    Parameters
    ----------
    model
        From :func:`bayes_stenosis.model.build_model`.
    settings
        Sampler name (``nutpie`` or ``pymc``), chains, draws, tuning steps, target acceptance and
        the run seed.
    progress
        Show the sampler's progress bar.
    status
        Optional callback returning a context manager that shows what phase is running (the CLI
        passes a rich spinner).
    predictive_summary
        Optional reduction of predictive replicates (a Dataset with dims chain, draw, ...) to what is
        kept of them. When given, replicates are drawn in chunks of at most ``predictive_chunk_mb``
        (all chains) and each chunk is reduced before the next is drawn, so that patient-level
        replicates (N x cells x draws) never sit in memory whole. Each chunk has its own child seed;
        the chunk size follows from the data's size, so the same study and seed give the same numbers.
    predictive_chunk_mb
        Memory budget of one chunk of replicates when ``predictive_summary`` is given. Each chunk
        compiles PyMC's forward sampler again (~3 s), so chunks are as large as the budget allows.
    prior_model
        The model to draw the prior and prior predictive from, when it is not ``model``
        (:func:`bayes_stenosis.model.prior_sampling_model`: same joint distribution, a form that
        can be sampled forward).
    compiled
        A cache of nutpie compiles by model structure (:class:`CompileCache`): a model whose structure
        was compiled before swaps its data into that compile instead of compiling again. ``None``:
        this process's cache (``PROCESS_COMPILES``); a new empty cache forces a fresh compile.
    prior_var_names
        The prior variables to draw (default: every free variable and deterministic, and the
        observed replicates); empty: no prior group (a sweep, whose decision tables draw their own).
    posterior_predictive
        Draw the posterior predictive and the log-likelihood (a sweep that only decides skips them).
    predictive_model
        The model to draw them from at the posterior draws, when it is not ``model``
        (:func:`bayes_stenosis.model.predictive_model`: same free variables, one observed node per
        patient where ``model`` has sufficient statistics).
    prior_draws
        The prior (and prior predictive) draws made elsewhere, as :func:`draw_prior` makes them: a
        callable, called once the posterior is sampled (``run.fit_study`` draws them in a parallel
        process, :mod:`bayes_stenosis.inference.background`, while the posterior is sampled). None:
        drawn here, before the posterior.

    Returns
    -------
    idata, timings
        InferenceData with groups posterior, prior, prior_predictive, posterior_predictive,
        log_likelihood, sample_stats, observed_data and constant_data; timings in seconds per phase.
    """
    timings: dict[str, float] = {}
    phase = phases(status)
    if prior_draws is None:
        with _timed_phase(phase, "sampling the prior predictive", timings, "prior_predictive"):
            prior = draw_prior(
                model if prior_model is None else prior_model,
                settings,
                var_names=prior_var_names,
                predictive_summary=predictive_summary,
                predictive_chunk_mb=predictive_chunk_mb,
            )
    idata = draw_posterior(model, settings, progress=progress, phase=phase, compiled=compiled, timings=timings)
    if prior_draws is not None:
        with _timed_phase(phase, "the prior draws, made in a parallel process", timings, "prior_wait"):
            prior = prior_draws()
    if prior is not None:
        idata.extend(prior)
    if posterior_predictive:
        seed = settings.seeds()["posterior_predictive"]
        with _timed_phase(phase, "posterior predictive and log-likelihood", timings, "posterior_predictive"):
            target = model if predictive_model is None else predictive_model
            draw_posterior_predictive(idata, target, seed, predictive_summary, predictive_chunk_mb)
    idata.posterior.attrs["sampler"] = settings.name
    return idata, timings


@contextmanager
def _timed_phase(phase: Callable[[str], object], message: str, timings: dict[str, float], name: str):
    """Show ``message`` through ``phase`` while the block runs, and record its seconds as ``timings[name]``."""
    with phase(message):
        start = time.perf_counter()
        yield
        timings[name] = time.perf_counter() - start


def draw_prior(
    forward: pm.Model,
    settings: SamplerSettings,
    *,
    var_names: Sequence[str] | None = None,
    predictive_summary: Callable[[xr.Dataset], xr.Dataset] | None = None,
    predictive_chunk_mb: float = 256.0,
) -> az.InferenceData | None:
    """Prior draws (and prior predictive replicates) from the prior stream of the run seed; None for an empty
    ``var_names`` (no prior group: a sweep's fits, whose decision tables draw their own prior of delta)."""
    if var_names is not None and len(var_names) == 0:
        return None
    seed = settings.seeds()["prior_predictive"]
    draws = settings.prior_draws
    check_forward_sampling(forward)
    observed = [rv.name for rv in forward.observed_RVs]
    with forward:
        if var_names is None:
            # latent variables of the threshold augmentation are flat: not part of the prior
            flat = {rv.name for rv in forward.free_RVs if rv.owner.op.__class__.__name__.startswith("Flat")}
            names = [rv.name for rv in forward.free_RVs if rv.name not in flat]
            names += [d.name for d in forward.deterministics]
            if predictive_summary is None:
                names += observed
        else:
            names, observed = list(var_names), []
        prior = forward_draws(forward, names, draws, seed)
        if predictive_summary is not None and observed:
            # replicates from the prior draws, chunked like the posterior predictive (own child seed)
            child = np.random.SeedSequence(seed).spawn(1)[0]
            chunk = draws_per_chunk(forward, observed, prior.prior.sizes["chain"], predictive_chunk_mb)
            with quiet_forward_sampling():
                reduced, _ = chunked_predictive(
                    prior.prior, observed, predictive_summary, chunk, int(child.generate_state(1)[0])
                )
            prior.add_groups(prior_predictive=reduced)
    return prior


def draw_prior_delta(forward: pm.Model, settings: SamplerSettings) -> xr.DataArray:
    """``settings.prior_draws_decisions`` prior draws of ``delta_natural`` alone (own child stream):
    the prior probabilities of the decision table, to a Monte Carlo SE of at most 0.0036."""
    draws, seed = settings.prior_draws_decisions, settings.seeds()["prior_decisions"]
    return draw_prior_variables(forward, ["delta_natural"], draws, seed)["delta_natural"]


def draw_prior_variables(forward: pm.Model, names: Sequence[str], draws: int, seed: int) -> xr.Dataset:
    """``draws`` forward prior draws of the named variables alone (one chain), from ``seed``."""
    check_forward_sampling(forward)
    return forward_draws(forward, names, draws, seed).prior


#: How a compiled model was served, in words (the manifest records the key: hit, miss, ...).
COMPILE_OUTCOMES = {
    "hit": "loaded from the disk cache",
    "miss": "compiled and saved to the disk cache",
    "rebuilt": "compiled again: a damaged disk-cache entry was replaced",
    "uncacheable": "compiled (this nutpie cannot be cached on disk)",
    "off": "compiled (disk cache off)",
}


def draw_posterior(
    model: pm.Model,
    settings: SamplerSettings,
    *,
    progress: bool,
    phase: Callable[[str], object],
    compiled: CompileCache | None,
    timings: dict[str, float],
) -> az.InferenceData:
    """NUTS draws from the posterior stream of the run seed (nutpie, or PyMC's own NUTS)."""
    seed = settings.seeds()["posterior"]
    if settings.name == "nutpie":
        start = time.perf_counter()
        cache = PROCESS_COMPILES if compiled is None else compiled
        if structure_key(model) in cache.models:
            reused, _ = cache.get(model)
            how = "in-process"
        else:
            with phase("compiling the model (numba), or loading it from the disk cache of compiled designs") as said:
                reused, _ = cache.get(model)
                if callable(said):  # a status line that reports how the phase went
                    said(COMPILE_OUTCOMES.get(reused.disk_cache, reused.disk_cache))
            how = reused.disk_cache
        kernel = reused.compiled.with_data(**reused.data_for(model))
        timings["compile"] = time.perf_counter() - start
        start = time.perf_counter()
        with sampling_phase(phase, settings, progress):
            idata = nutpie_sample(
                kernel,
                chains=settings.chains,
                draws=settings.draws,
                tune=settings.tune,
                seed=seed,
                target_accept=settings.target_accept,
                progress=progress,
            )
        timings["sample"] = time.perf_counter() - start
        # how the compile was served: in-process (reused), hit (disk cache), miss, rebuilt, uncacheable, off
        idata.posterior.attrs["compile_cache"] = how
        return idata
    if settings.name == "pymc":
        start = time.perf_counter()
        with model, sampling_phase(phase, settings, progress):
            idata = pm.sample(
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                cores=min(settings.chains, 2),
                target_accept=settings.target_accept,
                random_seed=seed,
                progressbar=progress,
                compute_convergence_checks=False,
            )
        timings["compile_and_sample"] = time.perf_counter() - start
        return idata
    raise ValueError(f"unknown sampler {settings.name!r}")  # guarded by the spec schema


def sampling_phase(phase: Callable[[str], object], settings: SamplerSettings, progress: bool):
    """The sampling as a phase of the command (a line with its duration in a log) unless the sampler shows its
    own progress bar (``progress``: a terminal)."""
    if progress:
        return nullcontext()
    what = f"{settings.chains} chains x {settings.draws} draws after {settings.tune} tuning steps"
    return phase(f"sampling ({settings.name}, {what})")


def draw_posterior_predictive(
    idata: az.InferenceData,
    model: pm.Model,
    seed: int,
    predictive_summary: Callable[[xr.Dataset], xr.Dataset] | None,
    predictive_chunk_mb: float,
) -> None:
    """Posterior predictive replicates and pointwise log-likelihoods, added to ``idata``."""
    observed = [rv.name for rv in model.observed_RVs]
    with model, quiet_forward_sampling():
        if observed and predictive_summary is None:
            ppc = pm.sample_posterior_predictive(idata, random_seed=seed, progressbar=False, var_names=observed)
            idata.extend(ppc)
        elif observed:
            chunk = draws_per_chunk(model, observed, idata.posterior.sizes["chain"], predictive_chunk_mb)
            reduced, observed_data = chunked_predictive(idata.posterior, observed, predictive_summary, chunk, seed)
            idata.add_groups(posterior_predictive=reduced)
            if observed_data is not None and "observed_data" not in idata.groups():
                idata.add_groups(observed_data=observed_data)
        if observed:
            pm.compute_log_likelihood(idata, progressbar=False)
