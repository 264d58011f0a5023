"""nutpie's numba compile, kept on disk: a model structure compiled once loads in seconds in later processes.

nutpie compiles each model into two C callbacks (log density with gradient; the expansion to all
traced variables) by wrapping pytensor's numba function in a ``numba.cfunc``. Its wrappers close
over the inner function and the data arrays, which numba refuses to cache, so every process
re-optimises the whole model (flagship: 25-100 s of compile per process, measured in BENCHMARKS.md).

Here the same wrappers are written as a small source file named by a key of everything the
compiled code depends on, the inner functions and constants enter as module globals (numba's
cache index keys a function on its bytecode and closure, not its globals), and the cfuncs are
compiled with ``cache=True``: numba stores the optimised machine code beside the file, and a later
process with the same key loads it instead of compiling (the source and its files:
:mod:`bayes_stenosis.inference.callbacks`).

The key (SHA-256) covers: the model's graph as built (every operation with its parameters, input
positions, constant values and types; :func:`model_fingerprint`), the free and traced
dimensions, the data containers' names, ranks and dtypes, the wrapper source, the
``erfcx`` implementation, pytensor's fastmath flag and the versions of Python, numpy, numba,
llvmlite, pytensor, pymc and nutpie. numba adds the CPU and its own flags. Data *values* and lengths
are not in the key: they reach the code at run time through nutpie's user-data pointer (the code
reads each array's shape there; its compile-time array only gives the rank).

A hit does not need the key's compile: an index file (:mod:`bayes_stenosis.inference.cache_index`),
keyed by what is known before compiling, leads from the model as built to the key and the shared
variables the code reads, so a warm process loads the callbacks without compiling the model's pytensor
functions (flagship: the compile phase 7.8 -> 0.6 s).

A stale cache cannot be hit (any change changes the key); a damaged one is never trusted: the
cache files' SHA-256 are recorded after a save and checked before a load, and files that do not
match are deleted and rebuilt. ``BAYES_STENOSIS_COMPILE_CACHE`` names the folder (default
``$XDG_CACHE_HOME/bayes-stenosis/nutpie`` or ``~/.cache/bayes-stenosis/nutpie``); ``off`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pymc as pm
import pytensor
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import toposort

from bayes_stenosis.inference import cache_index
from bayes_stenosis.inference.callbacks import (
    WRAPPER_SOURCE,
    CacheEntry,
    callback_module,
    compile_callbacks,
    load_callbacks,
)

CACHE_ENV = "BAYES_STENOSIS_COMPILE_CACHE"

# What the compile below takes from nutpie (0.16) besides its public API; a nutpie without them gets
# nutpie's own (uncached) compile.
NUTPIE_INTERNALS = (
    "CompiledPyMCModel",
    "_make_functions",
    "_compute_shapes",
    "_prepare_dims_and_coords",
    "_rv_dict_to_flat_array_wrapper",
    "_wrap_with_lock",
    "make_extraction_fn",
    "make_user_data",
)


@dataclass(frozen=True)
class DiskCompile:
    """A nutpie compiled model and how the disk cache served it.

    ``status``: ``"hit"`` (loaded), ``"miss"`` (compiled and saved), ``"rebuilt"`` (damaged files
    deleted, compiled and saved), ``"uncacheable"`` (compiled; numba would not cache the code) or
    ``"off"`` (cache turned off).
    """

    compiled: object
    status: str
    key: str | None


def cache_folder() -> Path | None:
    """The folder of compiled models, or None when ``BAYES_STENOSIS_COMPILE_CACHE=off``."""
    setting = os.environ.get(CACHE_ENV, "").strip()
    if setting.lower() in {"off", "0", "false", "no"}:
        return None
    if setting:
        return Path(setting).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "bayes-stenosis" / "nutpie"


def _describe_op(op) -> str:
    props = getattr(op, "_props_dict", None)
    described = repr(sorted(props().items(), key=lambda kv: kv[0])) if props else str(op)
    return f"{type(op).__module__}.{type(op).__qualname__}{described}"


def model_fingerprint(model: pm.Model) -> str:
    """SHA-256 of the model as built: every operation with its parameters, wiring, constants and types.

    Two models with the same variables can still differ in their graph (a threshold statement's event
    kind, P>alpha or P<alpha, is a constant index into the graph unless ``kinds_as_data``); this
    fingerprint tells them apart. Data containers enter by name and type only (their values are what
    a refit swaps; their lengths are dynamic). It keys both the in-process reuse of a compile
    (``structure_key``) and the disk cache.

    The disk key is taken before pytensor's rewrites, not from the compiled graphs: the rewrites visit
    sets of variables in an order that differs between processes, so one model compiles to graphs
    with the same operations and constants wired in another order (seen on the flagship and on a
    two-outcome threshold study; the draws were equal); a key on them missed the cache in about half
    of the processes. Every process now loads the code the first one compiled. What the compile adds
    to the model graph is fixed by the library versions in the key.
    """
    outputs = [*model.free_RVs, *model.observed_RVs, *model.potentials, *model.deterministics]
    nodes = list(toposort(outputs))
    position: dict = {}
    digest = hashlib.sha256()
    for i, node in enumerate(nodes):
        digest.update(_describe_op(node.op).encode())
        for var in node.inputs:
            if var in position:
                digest.update(f"<{position[var]}>".encode())
            elif isinstance(var, Constant):
                data = np.asarray(var.data)
                # an object array's bytes are pointers (None, slices): different in every process
                raw = repr(var.data).encode() if data.dtype == object else data.tobytes()
                digest.update(f"{var.type}:{data.dtype}:{data.shape}".encode() + raw)
            else:  # a shared variable (data container, dimension length, random generator)
                digest.update(f"[{var.name}:{var.type}]".encode())
        for j, out in enumerate(node.outputs):
            position[out] = f"{i}.{j}:{out.type}"
    for group in (model.free_RVs, model.observed_RVs, model.potentials, model.deterministics):
        digest.update(repr([(v.name, position.get(v)) for v in group]).encode())
    values = [(model.rvs_to_values[v].name, str(model.rvs_to_values[v].type)) for v in model.free_RVs]
    digest.update(repr(values).encode())
    transforms = [type(model.rvs_to_transforms.get(v)).__name__ for v in model.free_RVs]
    digest.update(repr((transforms, model.check_bounds)).encode())
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    import llvmlite
    import numba
    import nutpie

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "llvmlite": llvmlite.__version__,
        "pytensor": pytensor.__version__,
        "pymc": pm.__version__,
        "nutpie": nutpie.__version__,
    }


def compile_nutpie_cached(model: pm.Model, folder: Path | None = None) -> DiskCompile:
    """nutpie's numba compile of ``model`` (as ``nutpie.compile_pymc_model`` with its defaults), cached on disk.

    Parameters
    ----------
    model
        The model.
    folder
        The cache folder (default :func:`cache_folder`; None there turns the cache off).

    Returns
    -------
    DiskCompile
        The compiled model (a ``nutpie.compile_pymc.CompiledPyMCModel``) and the cache's status.
    """
    import nutpie
    from nutpie import compile_pymc as nutpie_pymc

    from bayes_stenosis.model.kernels.ghk import register_numba

    register_numba()  # the fused operations' numba code, before pytensor turns the graph into numba code
    if not all(hasattr(nutpie_pymc, name) for name in NUTPIE_INTERNALS):
        # another nutpie than the one this wrapper mirrors: its own compile, uncached
        return DiskCompile(nutpie.compile_pymc_model(model), "off", None)
    # Registers the pointer-free erfcx before pytensor turns the graph into numba code; imported
    # here, not at module top, so that importing the package does not import numba's dispatchers.
    from bayes_stenosis.inference import erfcx

    folder = cache_folder() if folder is None else folder
    fingerprint = model_fingerprint(model)
    layout = cache_index.sampler_layout(model, nutpie_pymc)
    index_key = cache_index.index_key(fingerprint, layout, _common_key_parts(erfcx.IMPLEMENTATION))
    if folder is not None:
        indexed = _load_indexed(model, folder, index_key, layout, nutpie_pymc)
        if indexed is not None:
            return indexed
    functions = _nutpie_functions(model, nutpie_pymc)
    shared = _shared_data(functions, nutpie_pymc)
    key = _compile_key(fingerprint, functions, shared, erfcx.IMPLEMENTATION)
    entry = _writable_entry(folder, key)
    module = callback_module(entry)
    _set_callback_globals(module, functions, shared, nutpie_pymc)
    logp_c, expand_c, status = compile_callbacks(entry, module)
    if entry is not None and status in ("hit", "miss", "rebuilt"):
        cache_index.write_index(folder, index_key, key, shared.data)
    return DiskCompile(_compiled_model(model, functions, shared, logp_c, expand_c, nutpie_pymc), status, key)


def _load_indexed(model: pm.Model, folder: Path, index_key: str, layout: tuple, nutpie_pymc) -> DiskCompile | None:
    """The compile of ``index_key`` loaded from disk without compiling the model's pytensor functions
    (:mod:`bayes_stenosis.inference.cache_index`), or None when the index or the cache cannot serve it.

    The compiled model has no pytensor functions (``logp_func``, ``expand_func``: None); nutpie samples
    and swaps data through the C callbacks, the initial point function and the user data alone.
    """
    record = cache_index.read_index(folder, index_key)
    if record is None:
        return None
    found = cache_index.indexed_shared_data(model, record)
    if found is None:
        return None
    entry = CacheEntry(folder, record["compile_key"])
    if not entry.source.exists():
        return None
    n_dim, n_expanded, shape_info = layout
    module = callback_module(entry)
    module.N_DIM, module.N_EXPANDED = n_dim, n_expanded
    loaded = load_callbacks(entry, module)
    if loaded is None:
        return None
    variables, data = found
    shared = _SharedData(data, nutpie_pymc.make_user_data(variables, data), [], [])
    n_free = len(model.free_RVs)  # the layout lists the free variables first
    initial_point = nutpie_pymc._rv_dict_to_flat_array_wrapper(
        _initial_point_fn(model, nutpie_pymc), names=shape_info[0][:n_free], shapes=shape_info[2][:n_free]
    )
    functions = _NutpieFunctions(n_dim, n_expanded, None, None, initial_point, shape_info)
    return DiskCompile(_compiled_model(model, functions, shared, *loaded, nutpie_pymc), "hit", record["compile_key"])


class _NutpieFunctions(NamedTuple):
    """What nutpie's ``_make_functions`` returns: dimensions, the pytensor functions of the log density
    (with gradient) and of the expansion to all traced variables, the initial point and the shapes."""

    n_dim: int
    n_expanded: int
    logp_fn: object
    expand_fn: object
    initial_point: object
    shape_info: tuple


def _nutpie_functions(model: pm.Model, nutpie_pymc) -> _NutpieFunctions:
    """The model's functions compiled by pytensor to numba, with nutpie's default (jittered) initial point."""
    return _NutpieFunctions(
        *nutpie_pymc._make_functions(
            model,
            mode="NUMBA",
            compute_grad=True,
            join_expanded=True,
            pymc_initial_point_fn=_initial_point_fn(model, nutpie_pymc),
        )
    )


def _initial_point_fn(model: pm.Model, nutpie_pymc):
    """nutpie's default initial point function: PyMC's support point, jittered, on the transformed scale."""
    from pymc.initial_point import make_initial_point_fn

    return nutpie_pymc._wrap_with_lock(
        make_initial_point_fn(
            model=model,
            default_strategy="support_point",
            jitter_rvs=set(model.free_RVs),
            return_transformed=True,
        )
    )


class _SharedData(NamedTuple):
    """The data the compiled code reads through nutpie's user-data pointer: read-only copies of the shared
    variables by name, that pointer, and the names each function reads."""

    data: dict[str, np.ndarray]
    user_data: object
    logp_names: list[str]
    expand_names: list[str]


def _shared_data(functions: _NutpieFunctions, nutpie_pymc) -> _SharedData:
    """The shared variables (data containers, dimension lengths) of both functions, one per name."""
    shared_data: dict[str, np.ndarray] = {}
    shared_vars = {}
    for var in [*functions.logp_fn.get_shared(), *functions.expand_fn.get_shared()]:
        if var.name in shared_vars and shared_vars[var.name] is not var:
            raise ValueError(f"shared variables must have unique names: {var.name}")
        shared_data[var.name] = np.array(var.get_value(), order="C", copy=True)
        shared_vars[var.name] = var
    for value in shared_data.values():
        value.flags.writeable = False
    user_data = nutpie_pymc.make_user_data(shared_vars, shared_data)
    logp_names = [var.name for var in functions.logp_fn.get_shared()]
    expand_names = [var.name for var in functions.expand_fn.get_shared()]
    return _SharedData(shared_data, user_data, logp_names, expand_names)


def _common_key_parts(erfcx_implementation: str) -> dict:
    """What every key holds besides the model: the wrapper source, ``erfcx``, fastmath and library versions."""
    return {
        "source": hashlib.sha256(WRAPPER_SOURCE.encode()).hexdigest(),
        "erfcx": erfcx_implementation,
        "fastmath": str(pytensor.config.numba__fastmath),
        "versions": _versions(),
    }


def _compile_key(fingerprint: str, functions: _NutpieFunctions, shared: _SharedData, erfcx_implementation: str) -> str:
    """The disk key (SHA-256) of a compile: everything its code depends on (see the module docstring)."""
    shared_data = shared.data
    key_parts = {
        "model": fingerprint,
        "dims": [int(functions.n_dim), int(functions.n_expanded)],
        # sorted: their order follows the compiled graph's inputs, which the rewrites may change; the
        # cached code reads each array by name and passes it in its own order
        "shared": [[name, shared_data[name].ndim, str(shared_data[name].dtype)] for name in sorted(shared_data)],
        "logp_shared": sorted(shared.logp_names),
        "expand_shared": sorted(shared.expand_names),
        **_common_key_parts(erfcx_implementation),
    }
    return hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()


def _set_callback_globals(module, functions: _NutpieFunctions, shared: _SharedData, nutpie_pymc) -> None:
    """Give the callbacks' module what its functions read as globals: the dimensions and nutpie's
    extraction of each function's data from the user-data pointer around pytensor's numba function."""
    module.N_DIM = functions.n_dim
    module.N_EXPANDED = functions.n_expanded
    dtype = shared.user_data.dtype
    module.EXTRACT_LOGP = nutpie_pymc.make_extraction_fn(
        functions.logp_fn.vm.jit_fn, shared.data, shared.logp_names, dtype
    )
    module.EXTRACT_EXPAND = nutpie_pymc.make_extraction_fn(
        functions.expand_fn.vm.jit_fn, shared.data, shared.expand_names, dtype
    )


def _writable_entry(folder: Path | None, key: str) -> CacheEntry | None:
    """The cache files of ``key`` with the callbacks' source written; None when the cache is off or its
    folder cannot be written (a warning: the compile goes on without it)."""
    if folder is None:
        return None
    entry = CacheEntry(folder, key)
    try:
        entry.write_source()
    except OSError as err:
        # stacklevel 3: the caller of compile_nutpie_cached
        warnings.warn(f"compile cache {folder} not writable ({err}); compiling without it", stacklevel=3)
        return None
    return entry


def _compiled_model(model: pm.Model, functions: _NutpieFunctions, shared: _SharedData, logp_c, expand_c, nutpie_pymc):
    """nutpie's compiled model around the two C callbacks, as ``nutpie.compile_pymc_model`` makes it."""
    shape_info = functions.shape_info
    dims, coords = nutpie_pymc._prepare_dims_and_coords(model, shape_info)
    return nutpie_pymc.CompiledPyMCModel(
        _n_dim=functions.n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp_c,
        compiled_expand_func=expand_c,
        initial_point_func=functions.initial_point,
        shared_data=shared.data,
        user_data=shared.user_data,
        n_expanded=functions.n_expanded,
        shape_info=shape_info,
        logp_func=functions.logp_fn,
        expand_func=functions.expand_fn,
    )
