"""Compiling a model for nutpie, and reusing a compile: compile a model structure once, swap its data.

Models of one structure (same variables, same ``pm.Data`` names and shapes: one study design under
prior sets of one family, or simulated replicates of one design) differ only in their data
containers (:func:`bayes_stenosis.model.data_values`), so the sampler is compiled once and each
refit swaps the data (nutpie's ``with_data``): a refit costs its sampling time, not a compile.
"""

from __future__ import annotations

import time

import numpy as np
import pymc as pm
import pytensor
from threadpoolctl import threadpool_limits

from bayes_stenosis.inference.disk_cache import DiskCompile, compile_nutpie_cached, model_fingerprint
from bayes_stenosis.inference.settings import SamplerSettings
from bayes_stenosis.model import data_values


def compile_nutpie(model: pm.Model) -> DiskCompile:
    """nutpie's numba compile of ``model``, with numba's fastmath off, kept in the disk cache.

    The compiled code is saved by the model's structure (:mod:`bayes_stenosis.inference.disk_cache`):
    a later process fitting the same structure loads it in about a second instead of compiling.
    Cold and warm compiles give identical draws for the same seed (tests/inference/test_disk_cache.py).

    With fastmath on, LLVM may reassociate and fuse floating-point operations, and how far it does
    depends on what gets inlined, which differs between a fresh compile and functions loaded from
    pytensor's numba cache (``~/.pytensor``). The same seed then gave different draws on the first
    run of a machine and on later ones (flagship: P(equiv) ODI week 8 0.981 cold vs 0.983 warm, one
    divergence vs none). With fastmath off cold and warm runs give identical draws; sampling costs
    about the same (flagship 23-26 s vs 20-23 s, BENCHMARKS.md).
    """
    with pytensor.config.change_flags(numba__fastmath=False):
        return compile_nutpie_cached(model)


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
            save_warmup=False,  # tuning draws are not posterior draws; kept, they were 40 % of posterior.nc
        )


def fixed_coords(model: pm.Model) -> tuple:
    """The coordinates that fix what the sampler sees (free variables) or writes (deterministics), with lengths.

    Coordinates that only label data or observed rows (patient-level rows per missingness pattern)
    are not among them: their lengths reach the compiled code at run time, as data shapes and as
    PyMC's dimension-length variables, which :meth:`CompiledModel.fit` swaps with the data.
    """
    dims = model.named_vars_to_dims
    used = {d for var in (*model.free_RVs, *model.deterministics) for d in dims.get(var.name, ()) if d is not None}
    return tuple((name, len(values)) for name, values in model.coords.items() if name in used and values is not None)


def dim_length_values(model: pm.Model) -> dict[str, np.ndarray]:
    """The current lengths of the model's dimensions (PyMC keeps them as shared variables), by name."""
    return {
        var.name: np.asarray(var.get_value())
        for var in model.dim_lengths.values()
        if hasattr(var, "get_value") and var.name is not None
    }


def structure_key(model: pm.Model) -> tuple:
    """What must be equal for two models to share one compile.

    The free and observed variables (name, distribution, static shape), potentials, deterministics,
    the coordinates of free variables and deterministics with their lengths (:func:`fixed_coords`), the
    names and ranks of the data containers, and the graph itself (:func:`model_fingerprint`). Models
    equal in all of these differ only in data values and in the lengths of data-only dimensions, so
    swapping data into another model's compile is safe. Data lengths may differ: nutpie's
    ``with_data`` passes each container's shape at run time (patient-level replicates differ in how
    many patients share a missingness pattern).
    """

    def described(rvs) -> tuple:
        return tuple((rv.name, type(rv.owner.op).__name__, rv.type.shape) for rv in rvs)

    data = tuple(sorted((name, np.ndim(value)) for name, value in data_values(model).items()))
    return (
        described(model.free_RVs),
        described(model.observed_RVs),
        tuple(p.name for p in model.potentials),
        tuple(d.name for d in model.deterministics),
        fixed_coords(model),
        data,
        model_fingerprint(model),
    )


class CompiledModel:
    """One compiled nutpie model, refitted to new data of the same structure.

    Parameters
    ----------
    model
        A model of the structure (any replicate's); its data are replaced at each :meth:`fit`.
    settings
        Chains, draws, tuning and target acceptance (the seed is given per fit).
    """

    def __init__(self, model: pm.Model, settings: SamplerSettings | None) -> None:
        self.settings = settings
        self.key = structure_key(model)
        start = time.perf_counter()
        compiled = compile_nutpie(model)
        self.compiled = compiled.compiled
        #: how the disk cache served this compile: hit, miss, rebuilt, uncacheable or off
        self.disk_cache = compiled.status
        self.compile_seconds = time.perf_counter() - start
        self.data_names = set(data_values(model))

    def data_for(self, model: pm.Model) -> dict[str, np.ndarray]:
        """``model``'s data containers and the dimension lengths the compiled code reads, to swap in."""
        lengths = {k: v for k, v in dim_length_values(model).items() if k in self.compiled.shared_data}
        return data_values(model) | lengths

    def fit(self, model: pm.Model, seed: int, *, progress: bool = False):
        """Sample the compiled structure with ``model``'s data."""
        if structure_key(model) != self.key:
            raise ValueError("the model's structure differs from the compiled one")
        return self.fit_values(self.data_for(model), seed, progress=progress)

    def fit_values(self, values: dict | None, seed: int, *, progress: bool = False):
        """Sample with the data containers set to ``values`` (None: the compiled model's own data)."""
        swappable = self.data_names | set(self.compiled.shared_data)  # data containers and dimension lengths
        if values is not None and not self.data_names <= set(values) <= swappable:
            raise ValueError("the model's data do not match the compiled design")
        compiled = self.compiled.with_data(**values) if values else self.compiled
        s = self.settings
        return nutpie_sample(
            compiled,
            chains=s.chains,
            draws=s.draws,
            tune=s.tune,
            seed=seed,
            target_accept=s.target_accept,
            progress=progress,
        )


class RecentlyUsed:
    """At most ``capacity`` values by key. Reading one (:meth:`get`) counts a hit and makes it the most recently
    used; adding one past the capacity (:meth:`put`) drops the least recently used."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.values: dict = {}
        self.hits = 0

    def __contains__(self, key) -> bool:
        return key in self.values

    def __len__(self) -> int:
        return len(self.values)

    def get(self, key):
        """The value of ``key`` (None if absent)."""
        value = self.values.pop(key, None)
        if value is not None:
            self.hits += 1
            self.values[key] = value  # most recently used last
        return value

    def put(self, key, value) -> None:
        self.values[key] = value
        while len(self.values) > self.capacity:
            self.values.pop(next(iter(self.values)))


class CompileCache:
    """Compiled models by structure: the first model of a structure is compiled, later ones reuse it.

    ``compile_seconds`` sums the compiles paid; ``hits`` counts the fits that reused one. At most
    ``max_models`` compiles are kept (the least recently used goes first).
    """

    def __init__(self, settings: SamplerSettings | None = None, max_models: int = 16) -> None:
        self.settings = settings
        self.models = RecentlyUsed(max_models)
        self.compile_seconds = 0.0

    @property
    def hits(self) -> int:
        return self.models.hits

    def get(self, model: pm.Model) -> tuple[CompiledModel, bool]:
        """The compiled model for ``model``'s structure, and whether it was compiled just now."""
        key = structure_key(model)
        reused = self.models.get(key)
        if reused is not None:
            return reused, False
        compiled = CompiledModel(model, self.settings)
        self.models.put(key, compiled)
        self.compile_seconds += compiled.compile_seconds
        return compiled, True


#: The compiles of this process, used by every fit not given a cache of its own: a notebook, a test
#: session or a command that fits one structure twice pays its numba compile once. The draws do not
#: depend on it (a reused compile gives bit-identical draws, tests/run/test_fit_study.py).
PROCESS_COMPILES = CompileCache()
