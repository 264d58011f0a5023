"""The baseline a user would write instead of ``bayes-stenosis fit``: plain PyMC, ``pm.sample`` defaults.

It builds the SAME model (it reuses ``bayes_stenosis.model.build_model`` on the same study and the
default spec and prior, so the comparison is of the workflow and the sampler, not of two different
models), calls ``pm.sample()`` with PyMC's defaults (PyMC's own NUTS, C backend; chains =
max(2, cores), 1000 tune + 1000 draws, target_accept 0.8) and writes the InferenceData to NetCDF.
Nothing else: no prior/posterior predictive, no diagnostics files, no decisions, no plots.

Usage: ``python benchmarks/plain_pymc_baseline.py STUDY OUT.nc [--seed N] [--model SPEC] [--prior SET]``
(``--model`` / ``--prior`` pick one point of a sensitivity grid, as ``bayes-stenosis fit`` does). Prints one JSON line
with in-process timings (import, build, pm.sample call, PyMC's own ``sampling_time``, NetCDF write)
and the minimum bulk ESS of Delta/delta.
"""

from __future__ import annotations

import argparse
import json
import time

t0 = time.perf_counter()
import arviz as az  # noqa: E402
import pymc as pm  # noqa: E402

from bayes_stenosis.model import build_model, prepare_inputs, resolve_prior  # noqa: E402
from bayes_stenosis.spec import load_spec  # noqa: E402
from bayes_stenosis.study import load_study  # noqa: E402

t_import = time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("study")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", default="default", help="model spec: bundled name or TOML path")
    parser.add_argument("--prior", default=None, help="prior set (default: the spec's default)")
    args = parser.parse_args()
    start = time.perf_counter()
    spec, _ = load_spec(args.model)
    inputs = prepare_inputs(load_study(args.study), spec)
    model = build_model(inputs, spec, resolve_prior(spec, args.prior or spec.prior.default, inputs))
    t_build = time.perf_counter() - start
    start = time.perf_counter()
    with model:
        idata = pm.sample(random_seed=args.seed, progressbar=False)
    t_sample = time.perf_counter() - start
    start = time.perf_counter()
    idata.to_netcdf(args.out)
    t_write = time.perf_counter() - start
    ess = az.ess(idata, var_names=["delta"], method="bulk")["delta"].values.min()
    print(
        json.dumps(
            {
                "import": t_import,
                "build": t_build,
                "pm_sample_call": t_sample,
                "sampling_only": float(idata.sample_stats.attrs.get("sampling_time", float("nan"))),
                "write_netcdf": t_write,
                "chains": int(idata.posterior.sizes["chain"]),
                "draws": int(idata.posterior.sizes["draw"]),
                "min_ess_bulk_delta": float(ess),
                "divergences": int(idata.sample_stats["diverging"].sum()),
            }
        )
    )


if __name__ == "__main__":
    main()
