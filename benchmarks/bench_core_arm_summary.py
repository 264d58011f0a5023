"""Sampling of the arm-summary path under each parameterisation of the outcome deviations.

Usage::

    python benchmarks/bench_core_arm_summary.py FOLDER [marginalised,noncentred] [DRAWS]

FOLDER is a study folder (e.g. a simulated arm-summary trial from ``bayes_stenosis.simulation``:
``default_truth(n_per_arm=(20, 20))``, seed 1, level ``arm_summary_change``). Fits go through
``run.fit_study`` (the pipeline of ``bayes-stenosis fit``). Prints one JSON line per
parameterisation: compile and sampling seconds, divergences, leapfrog steps, worst R-hat and
bulk/tail ESS over delta, change and the hyperparameters, and the posterior of delta_natural.
Timings depend on machine load (report ``uptime`` beside them); steps, divergences and ESS do not.
"""

from __future__ import annotations

import json
import sys

import arviz as az

from bayes_stenosis.run import fit_study
from bayes_stenosis.spec import load_spec

HYPER = ["delta", "change", "Delta", "mu_change", "sigma_change", "tau", "r_time", "r_outcome"]


def main() -> None:
    folder = sys.argv[1]
    params = sys.argv[2].split(",") if len(sys.argv) > 2 else ["marginalised", "noncentred"]
    draws = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    spec, _ = load_spec()
    for param in params:
        hierarchy = spec.hierarchy.model_copy(update={"change_parameterisation": param})
        sp = spec.model_copy(update={"hierarchy": hierarchy})
        sp = sp.model_copy(update={"sampler": sp.sampler.model_copy(update={"target_accept": 0.95})})
        # the package's own pipeline (prior draws and posterior predictive skipped: not timed here)
        fit = fit_study(
            folder,
            spec=sp,
            prior_set="weakly_informative",
            seed=3,
            chains=4,
            draws=draws,
            tune=1000,
            posterior_predictive=False,
            prior_var_names=["delta_natural"],
        )
        idata = fit.idata
        stats = idata.sample_stats
        summary = az.summary(idata, var_names=[v for v in HYPER if v in idata.posterior])
        delta = idata.posterior["delta_natural"]
        record = {
            "folder": str(folder),
            "param": param,
            "compile_s": round(fit.timings["compile"], 1),
            "sample_s": round(fit.timings["sample"], 1),
            "divergences": int(stats.diverging.sum()),
            "steps_mean": round(float(stats.n_steps.mean()), 1),
            "max_rhat": float(summary.r_hat.max()),
            "min_ess_bulk": float(summary.ess_bulk.min()),
            "min_ess_tail": float(summary.ess_tail.min()),
            "worst": str(summary.ess_bulk.idxmin()),
            "delta_mean": delta.mean(("chain", "draw")).values.round(2).ravel().tolist(),
            "delta_sd": delta.std(("chain", "draw")).values.round(2).ravel().tolist(),
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
