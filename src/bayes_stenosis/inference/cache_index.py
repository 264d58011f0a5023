"""The disk cache's index: from a model as built straight to its compiled code, without pytensor's rewrites.

The key of a compile (:mod:`bayes_stenosis.inference.disk_cache`) names the shared variables the
compiled code reads, which are known only once the model's pytensor functions are compiled to numba;
that compile runs pytensor's graph rewrites (flagship: 6-20 s, most of a warm fit's compile phase),
spent only to find code that is already on disk. So after a compile is saved or loaded, an index
file records, under a key of what is known before compiling (:func:`index_key`: the model's
fingerprint, the sampler's layout of its variables, and the wrapper source, ``erfcx``, fastmath and
library versions of the compile key), the compile's key and the shared variables its code reads, in
the order of nutpie's user-data record (the compiled code reads each array at its offset in that
record). A later process with the same index key takes those variables from the model by name,
builds the record in that order and loads the callbacks from numba's cache
(:func:`bayes_stenosis.inference.callbacks.load_callbacks`). Anything missing or different (no index,
a variable not in the model or of another rank or dtype, numba's files absent, damaged or not
loadable) falls back to the full compile path, which checks, loads or rebuilds as before.
"""

from __future__ import annotations

import hashlib
import json
import os
from math import prod
from pathlib import Path

import numpy as np
import pymc as pm
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.traversal import graph_inputs

#: The index format: part of every index key.
INDEX_VERSION = "bayes_stenosis.cache_index/1"


def sampler_layout(model: pm.Model, nutpie_pymc) -> tuple[int, int, tuple[list, list, list]]:
    """nutpie's layout of the sampler's vector: (free dimensions, traced dimensions, (names, slices, shapes)).

    The same as ``nutpie.compile_pymc._make_functions`` (0.16) returns, without compiling the model's
    functions: the free variables' values first, then every other traced variable.
    """
    shapes = nutpie_pymc._compute_shapes(model)
    names, slices, var_shapes = [], [], []
    count = 0
    for var in model.free_RVs:
        name = model.rvs_to_values[var].name
        shape = shapes[name]
        names.append(name)
        var_shapes.append(shape)
        slices.append(slice(count, count + prod(shape)))
        count += prod(shape)
    n_dim = count
    free_names = list(names)
    for var in model.unobserved_value_vars:
        if var.name in free_names:
            continue
        shape = shapes[var.name]
        names.append(var.name)
        var_shapes.append(shape)
        slices.append(slice(count, count + prod(shape)))
        count += prod(shape)
    return n_dim, count, (names, slices, var_shapes)


def index_key(fingerprint: str, layout: tuple[int, int, tuple], common: dict) -> str:
    """SHA-256 of what a compile's key depends on that is known before compiling: the model's fingerprint,
    the sampler layout and ``common`` (the wrapper source, ``erfcx``, fastmath, library versions)."""
    n_dim, n_expanded, (names, slices, shapes) = layout
    parts = {
        "index": INDEX_VERSION,
        "model": fingerprint,
        "dims": [int(n_dim), int(n_expanded)],
        "layout": [
            [name, [int(s.start), int(s.stop)], [int(n) for n in shape]]
            for name, s, shape in zip(names, slices, shapes, strict=True)
        ],
        **common,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def index_path(folder: Path, key: str) -> Path:
    """The index file of index key ``key``."""
    return folder / f"index_{key[:32]}.json"


def write_index(folder: Path, key: str, compile_key: str, data: dict[str, np.ndarray]) -> None:
    """Record under index key ``key`` the compile's key and its shared variables (name, rank, dtype) in the
    order of nutpie's user-data record. A folder that cannot be written is skipped: the index only saves time."""
    record = {
        "index_key": key,
        "compile_key": compile_key,
        "shared": [[name, int(value.ndim), str(value.dtype)] for name, value in data.items()],
    }
    target = index_path(folder, key)
    tmp = folder / f".{target.name}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)


def read_index(folder: Path, key: str) -> dict | None:
    """The record of index key ``key``, or None when there is none or it cannot be read."""
    try:
        record = json.loads(index_path(folder, key).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("index_key") != key or not isinstance(record.get("shared"), list):
        return None
    return record


def model_shared_variables(model: pm.Model) -> dict[str, SharedVariable] | None:
    """The model's shared variables (data containers, dimension lengths, ...) by name; None when two
    different ones share a name (the index could not tell them apart)."""
    outputs = [
        *model.free_RVs,
        *model.observed_RVs,
        *model.potentials,
        *model.deterministics,
        *model.rvs_to_values.values(),
        *model.data_vars,
        *model.dim_lengths.values(),
    ]
    found: dict[str, SharedVariable] = {}
    for var in graph_inputs(outputs):
        if not isinstance(var, SharedVariable) or var.name is None:
            continue
        if found.setdefault(var.name, var) is not var:
            return None
    return found


def indexed_shared_data(model: pm.Model, record: dict) -> tuple[dict, dict[str, np.ndarray]] | None:
    """The shared variables the record names and read-only C-ordered copies of their values, in the
    record's order; None when the model lacks one or has it with another rank or dtype."""
    available = model_shared_variables(model)
    if available is None:
        return None
    variables, data = {}, {}
    for name, ndim, dtype in record["shared"]:
        var = available.get(name)
        if var is None:
            return None
        value = np.array(var.get_value(), order="C", copy=True)
        if value.ndim != ndim or str(value.dtype) != dtype:
            return None
        value.flags.writeable = False
        variables[name], data[name] = var, value
    return variables, data
