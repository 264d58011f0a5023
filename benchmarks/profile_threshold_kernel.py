"""The flagship's compiled log density with gradient, as nutpie runs it, with and without the joint statement term.

Usage (repository root; ``PYTHONPATH`` picks the code measured)::

    python benchmarks/profile_threshold_kernel.py [STUDY] [EVALS]

Builds the model of STUDY (default farpour2022) as ``bayes-stenosis fit`` does and compiles it as the fit
does (:func:`bayes_stenosis.inference.compiled.compile_nutpie`: nutpie's numba callbacks, fastmath off,
the disk cache of compiled models), then, for the whole model and for the model without the joint
statement term (its ``pm.Potential`` replaced by standard normal latents: the rest of the log density),
prints: apply nodes of the compiled log-density-with-gradient graph and CPU microseconds per evaluation of
nutpie's C callback (called through ctypes, median of 5 batches of EVALS calls at 16 random points near
the initial point; the ctypes call adds about a microsecond). Timings depend on machine load (report
``uptime`` beside them); node counts do not.
"""

from __future__ import annotations

import ctypes
import json
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from bayes_stenosis.inference.compiled import compile_nutpie
from bayes_stenosis.model import build_model
from bayes_stenosis.run.fit import prepare_fit


def callback_timing(compiled, evals: int, seed: int = 0) -> float:
    """CPU microseconds (process time: less sensitive to other processes than wall time) per call of nutpie's
    log-density-with-gradient callback, median of 5 batches."""
    # nutpie's signature: (dim, x, gradient out, logp out, user data) -> error code
    prototype = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, *[ctypes.c_void_p] * 4)
    logp_c = prototype(compiled.compiled_logp_func.address)
    n = compiled.n_dim
    rng = np.random.default_rng(seed)
    start = compiled.initial_point_func(seed)
    points = [start + 0.1 * rng.standard_normal(n) for _ in range(16)]
    grad, logp = np.zeros(n), np.zeros(1)
    user = compiled.user_data
    args = [(p.ctypes.data, grad.ctypes.data, logp.ctypes.data, user.ctypes.data) for p in points]
    batches = []
    for _ in range(5):
        t0 = time.process_time()
        for i in range(evals):
            logp_c(n, *args[i % 16])
        batches.append((time.process_time() - t0) / evals * 1e6)
    return float(np.median(batches))


def timed(compiled, evals: int) -> float:
    """:func:`callback_timing` with BLAS on one thread, as the sampler runs it (nutpie_sample)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return callback_timing(compiled, evals)


def main(study: str = "farpour2022", evals: int = 20000) -> None:
    prepared = prepare_fit(study)
    for variant in ("whole", "without_joint_term"):
        model = build_model(prepared.inputs, prepared.spec, prepared.prior)
        if variant != "whole":  # the latents as plain standard normals: the term's cost minus its trivial part
            (pos,) = [i for i, p in enumerate(model.potentials) if p.name == "threshold_joint_likelihood"]
            trivial = -0.5 * (model["threshold_joint_raw"] ** 2).sum()
            trivial.name = "threshold_joint_likelihood"
            list.__setitem__(model.potentials, pos, trivial)  # PyMC's list of potentials refuses item assignment
        t0 = time.perf_counter()
        compiled = compile_nutpie(model)
        compile_s = time.perf_counter() - t0
        # a disk-cache hit loads the machine code without compiling the graph: no node count then
        logp_func = compiled.compiled.logp_func
        nodes = None if logp_func is None else len(logp_func.maker.fgraph.apply_nodes)
        record = {
            "study": study,
            "variant": variant,
            "nodes": nodes,
            "us_per_eval": round(timed(compiled.compiled, evals), 2),
            "disk_cache": compiled.status,
            "compile_s": round(compile_s, 1),
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["farpour2022"]), *(int(a) for a in sys.argv[2:3]))
