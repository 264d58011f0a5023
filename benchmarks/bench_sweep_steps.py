"""Where a sensitivity sweep's time goes outside sampling: in-process timers around each step of every fit.

Runs the 12-fit flagship grid of ``bench_sensitivity.py`` (4 prior sets x 3 correlation assumptions) through
``run_sensitivity`` in this process, with each step of a fit (prepare, build, the nutpie compile cache, sampling,
prior draws of delta, diagnostics, decision tables, fits.csv row) wrapped in a timer, and prints the seconds per
fit of each. The timers wrap module attributes, so the steps are the ones the sweep calls.

Usage::

    python benchmarks/bench_sweep_steps.py                 # the spec's sampler: 4 chains x (1000 + 1500)
    python benchmarks/bench_sweep_steps.py --draws 300 --tune 300
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sensitivity import spec_copy  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=1500)
    parser.add_argument("--tune", type=int, default=1000)
    args = parser.parse_args()

    import bayes_stenosis.analyses.sensitivity.runner as runner
    import bayes_stenosis.inference.compiled as compiled
    import bayes_stenosis.inference.sampling as sampling
    import bayes_stenosis.run.after_sampling as after

    fit = sys.modules["bayes_stenosis.run.fit"]  # the package exports a function of the same name
    seconds: dict[str, float] = collections.defaultdict(float)

    def timed(owner, name: str, label: str | None = None) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                seconds[label or name] += time.perf_counter() - start

        setattr(owner, name, wrapper)

    for owner, name in [
        (runner, "fit_study"),
        (runner, "margin_set_table"),
        (runner, "fit_summary"),
        (fit, "prepare_fit"),
        (fit, "build_model"),
        (fit, "prior_sampling_model"),
        (fit, "tidy_inference_data"),
        (fit, "verdict"),
        (after, "parameter_table"),
        (after, "sampler_table"),
        (after, "decision_rows"),
        (after, "decision_probability_table"),
        (after, "draw_prior_delta"),
        (sampling, "nutpie_sample"),
    ]:
        timed(owner, name)
    timed(compiled.CompileCache, "get", "compile cache (load or reuse)")

    with tempfile.TemporaryDirectory(prefix="sweep_steps_") as tmp:
        grid = spec_copy(Path(tmp), "grid", None)
        result = runner.run_sensitivity(
            "farpour2022", spec=grid, out=Path(tmp) / "out", draws=args.draws, tune=args.tune, plots=False
        )
    n = len(result.fits)
    for name, total in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"{name:32s} {total / n:7.3f} s a fit")
    t = result.timings
    outside = t["sweep_total"] - t["sampling"] - t["compile"]
    print(f"outside compile and sampling, in-process: {outside / n:.3f} s a fit")


if __name__ == "__main__":
    main()
