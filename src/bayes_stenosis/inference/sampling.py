"""Sampling: one function, an explicit sampler, one seed for every random step.

The seed is split with :class:`numpy.random.SeedSequence` into independent streams for the prior
predictive, the posterior (NUTS) and the posterior predictive, so the same seed gives the same
numbers and no step shares a stream with another.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import xarray as xr
from threadpoolctl import threadpool_limits

from bayes_stenosis.model import check_forward_sampling
from bayes_stenosis.spec import Sampler


@dataclass(frozen=True)
class SamplerSettings:
    """What the sampler does; recorded in the manifest."""

    name: str
    chains: int
    draws: int
    tune: int
    target_accept: float
    seed: int
    prior_draws: int = 1000

    @classmethod
    def from_spec(cls, sampler: Sampler, **overrides) -> SamplerSettings:
        values = sampler.model_dump()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def seeds(self) -> dict[str, int]:
        """Independent child seeds derived from the one run seed."""
        children = np.random.SeedSequence(self.seed).spawn(3)
        names = ("prior_predictive", "posterior", "posterior_predictive")
        return {n: int(c.generate_state(1)[0]) for n, c in zip(names, children, strict=True)}


def compile_nutpie(model: pm.Model):
    """nutpie's numba compile of ``model``, with numba's fastmath off.

    With fastmath on, LLVM may reassociate and fuse floating-point operations, and how far it does
    depends on what gets inlined, which differs between a fresh compile and functions loaded from
    pytensor's numba cache (``~/.pytensor``). The same seed then gave different draws on the first
    run of a machine and on later ones (flagship: P(equiv) ODI week 8 0.981 cold vs 0.983 warm, one
    divergence vs none). With fastmath off cold and warm runs give identical draws; sampling costs
    about the same (flagship 23-26 s vs 20-23 s, BENCHMARKS.md).
    """
    import nutpie

    with pytensor.config.change_flags(numba__fastmath=False):
        return nutpie.compile_pymc_model(model)


def nutpie_sample(compiled, *, chains: int, draws: int, tune: int, seed: int, target_accept: float, progress=False):
    """``nutpie.sample`` on at most 2 cores, with BLAS limited to one thread per chain.

    nutpie runs chains in threads; a multi-threaded BLAS inside each chain oversubscribes the cores
    (flagship on 2 cores: 127 s of sampling with OpenBLAS's default threads, 20 s with one). The
    draws do not depend on the BLAS thread count (checked: identical posterior).
    """
    import nutpie

    with threadpool_limits(limits=1, user_api="blas"):
        return nutpie.sample(
            compiled,
            chains=chains,
            draws=draws,
            tune=tune,
            seed=seed,
            target_accept=target_accept,
            progress_bar=progress,
            cores=min(chains, 2),
        )


def sample(
    model: pm.Model,
    settings: SamplerSettings,
    *,
    progress: bool = True,
    status: Callable[[str], object] | None = None,
    predictive_summary: Callable[[xr.Dataset], xr.Dataset] | None = None,
    predictive_chunk_mb: float = 256.0,
    prior_model: pm.Model | None = None,
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
        Optional reduction of posterior predictive replicates (a Dataset with dims chain, draw, ...)
        to what is kept of them. When given, the replicates are drawn in chunks of draws of at
        most ``predictive_chunk_mb`` (all chains) and each chunk is reduced before the next is
        drawn, so that patient-level replicates (N x cells x draws) never sit in memory whole. Each
        chunk has its own child seed of the predictive stream; the chunk size follows from the data's
        size, so the same study and seed give the same numbers.
    predictive_chunk_mb
        Memory budget of one chunk of replicates when ``predictive_summary`` is given. Each chunk
        compiles PyMC's forward sampler again (~3 s), so chunks are as large as the budget allows.
    prior_model
        The model to draw the prior and prior predictive from, when it is not ``model``
        (:func:`bayes_stenosis.model.prior_sampling_model`: same joint distribution, a form that
        can be sampled forward).

    Returns
    -------
    idata, timings
        InferenceData with groups posterior, prior, prior_predictive, posterior_predictive,
        log_likelihood, sample_stats, observed_data and constant_data; timings in seconds per phase.
    """
    seeds = settings.seeds()
    timings: dict[str, float] = {}
    phase = status or (lambda _msg: nullcontext())

    forward = model if prior_model is None else prior_model
    check_forward_sampling(forward)
    with phase("sampling the prior predictive"):
        start = time.perf_counter()
        with forward:
            # latent variables of the threshold augmentation are flat: not part of the prior
            flat = {rv.name for rv in forward.free_RVs if rv.owner.op.__class__.__name__.startswith("Flat")}
            names = [rv.name for rv in forward.free_RVs if rv.name not in flat]
            names += [d.name for d in forward.deterministics]
            observed = [rv.name for rv in forward.observed_RVs]
            if predictive_summary is None:
                names += observed
            with warnings.catch_warnings():
                # the prior is wanted without the data terms: PyMC's note that Potentials
                # (the threshold likelihood) are ignored here is expected
                warnings.filterwarnings("ignore", message=".*Potentials.*")
                prior = pm.sample_prior_predictive(
                    draws=settings.prior_draws, random_seed=seeds["prior_predictive"], var_names=names
                )
            if predictive_summary is not None and observed:
                # replicates from the prior draws, chunked like the posterior predictive (own child seed)
                child = np.random.SeedSequence(seeds["prior_predictive"]).spawn(1)[0]
                chunk = draws_per_chunk(forward, observed, prior.prior.sizes["chain"], predictive_chunk_mb)
                reduced, _ = chunked_predictive(
                    prior.prior, observed, predictive_summary, chunk, int(child.generate_state(1)[0])
                )
                prior.add_groups(prior_predictive=reduced)
        timings["prior_predictive"] = time.perf_counter() - start

    if settings.name == "nutpie":
        with phase("compiling the model (numba)"):
            start = time.perf_counter()
            compiled = compile_nutpie(model)
            timings["compile"] = time.perf_counter() - start
        start = time.perf_counter()
        idata = nutpie_sample(
            compiled,
            chains=settings.chains,
            draws=settings.draws,
            tune=settings.tune,
            seed=seeds["posterior"],
            target_accept=settings.target_accept,
            progress=progress,
        )
        timings["sample"] = time.perf_counter() - start
    elif settings.name == "pymc":
        start = time.perf_counter()
        with model:
            idata = pm.sample(
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                cores=min(settings.chains, 2),
                target_accept=settings.target_accept,
                random_seed=seeds["posterior"],
                progressbar=progress,
                compute_convergence_checks=False,
            )
        timings["compile_and_sample"] = time.perf_counter() - start
    else:  # guarded by the spec schema
        raise ValueError(f"unknown sampler {settings.name!r}")

    idata.extend(prior)
    with phase("posterior predictive and log-likelihood"):
        start = time.perf_counter()
        with model:
            if observed and predictive_summary is None:
                ppc = pm.sample_posterior_predictive(
                    idata,
                    random_seed=seeds["posterior_predictive"],
                    progressbar=False,
                    var_names=observed,
                )
                idata.extend(ppc)
            elif observed:
                chunk = draws_per_chunk(model, observed, idata.posterior.sizes["chain"], predictive_chunk_mb)
                reduced, observed_data = chunked_predictive(
                    idata.posterior, observed, predictive_summary, chunk, seeds["posterior_predictive"]
                )
                idata.add_groups(posterior_predictive=reduced)
                if observed_data is not None and "observed_data" not in idata.groups():
                    idata.add_groups(observed_data=observed_data)
            if observed:
                pm.compute_log_likelihood(idata, progressbar=False)
        _add_threshold_predictive(idata, seeds["posterior_predictive"])
        timings["posterior_predictive"] = time.perf_counter() - start
    idata.posterior.attrs["sampler"] = settings.name
    return idata, timings


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


def _add_threshold_predictive(idata: az.InferenceData, seed: int) -> None:
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
