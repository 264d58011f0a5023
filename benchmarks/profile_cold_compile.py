"""Where a cold compile of a study's model goes: numba's compile events, per compiled function.

Usage (repository root; ``PYTHONPATH`` picks the code measured; fresh cache folders make it cold)::

    d=$(mktemp -d) && NUMBA_CACHE_DIR=$d/numba PYTENSOR_FLAGS=base_compiledir=$d/pt \\
        BAYES_STENOSIS_COMPILE_CACHE=$d/bs python benchmarks/profile_cold_compile.py [STUDY]

Builds the model of STUDY (default farpour2022) as ``bayes-stenosis fit`` does, compiles it as the fit does
(:func:`bayes_stenosis.inference.compiled.compile_nutpie`), and prints the compile's seconds, the seconds
numba held its LLVM lock (optimisation and code generation), the top-level compiles and, per function name,
the inclusive seconds and count of every compile (nested compiles are counted in their callers too).
"""

from __future__ import annotations

import collections
import sys
import time

from numba.core import event

records: list[tuple[float, int, str]] = []
llvm_seconds = [0.0]


class CompileTimer(event.Listener):
    """Inclusive seconds of every numba compile, with its nesting depth."""

    def __init__(self) -> None:
        self.stack: list[tuple[float, object]] = []

    def on_start(self, ev) -> None:
        self.stack.append((time.perf_counter(), ev.data))

    def on_end(self, ev) -> None:
        start, data = self.stack.pop()
        dispatcher = data.get("dispatcher") if isinstance(data, dict) else None
        name = getattr(getattr(dispatcher, "py_func", None), "__qualname__", str(dispatcher))
        records.append((time.perf_counter() - start, len(self.stack), name))


class LockTimer(event.Listener):
    """Seconds numba held its LLVM lock."""

    def on_start(self, ev) -> None:
        self.start = time.perf_counter()

    def on_end(self, ev) -> None:
        llvm_seconds[0] += time.perf_counter() - self.start


def main(study: str = "farpour2022") -> None:
    event.register("numba:compile", CompileTimer())
    event.register("numba:llvm_lock", LockTimer())
    from bayes_stenosis.inference.compiled import compile_nutpie
    from bayes_stenosis.model import build_model
    from bayes_stenosis.run.fit import prepare_fit

    prepared = prepare_fit(study)
    model = build_model(prepared.inputs, prepared.spec, prepared.prior)
    start = time.perf_counter()
    compiled = compile_nutpie(model)
    print(f"compile {time.perf_counter() - start:.1f} s ({compiled.status}), LLVM lock {llvm_seconds[0]:.1f} s")
    top = sorted((r for r in records if r[1] == 0), reverse=True)
    print(f"{len(top)} top-level compiles, {sum(r[0] for r in top):.1f} s; the largest:")
    for seconds, _, name in top[:5]:
        print(f"  {seconds:6.2f} s  {name[:80]}")
    inclusive, count = collections.Counter(), collections.Counter()
    for seconds, _, name in records:
        inclusive[name[:60]] += seconds
        count[name[:60]] += 1
    print("inclusive seconds per function name (count):")
    for name, seconds in inclusive.most_common(20):
        print(f"  {seconds:6.2f} s  ({count[name]:3d})  {name}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
