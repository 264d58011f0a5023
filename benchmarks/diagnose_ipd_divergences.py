"""Where the divergent draws of the IPD SBC fits sit, and which model variant removes them (a diagnosis).

Refits the first N replicates of the ``ipd`` SBC case (``bayes_stenosis.calibration``: 2 outcomes x baseline +
2 follow-ups, 20 per arm, data simulated from the model's prior, the full mode's seed and sampler
settings unless overridden) under a model variant, and prints per fit the number of divergent draws
and, for each parameter, the median quantile of the divergent draws among the others (a funnel at 0
shows the scale parameter near quantile 0). The last line counts fits with a divergence.

Usage (repository root)::

    python benchmarks/diagnose_ipd_divergences.py 40 [--set hierarchy.change_parameterisation=noncentred]
        [--target-accept 0.95]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
from divergences import divergent_draw_quantiles

from bayes_stenosis import calibration as sbc
from bayes_stenosis.inference import CompiledModel
from bayes_stenosis.spec import load_spec

PARAMETERS = [
    "tau",
    "sigma_change",
    "Delta",
    "mu_change",
    "ipd_slope",
    "ipd_baseline_sd",
    "ipd_patient_sd",
    "ipd_residual_sd",
    "ipd_patient_corr",
    "ipd_residual_corr",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("replicates", type=int)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a spec setting, e.g. hierarchy.change_parameterisation=noncentred",
    )
    parser.add_argument("--target-accept", type=float, default=sbc.TARGET_ACCEPT)
    parser.add_argument("--seed", type=int, default=20181804, help="the SBC command's default seed")
    args = parser.parse_args()

    spec = load_spec()[0]
    for item in args.set:
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        current = getattr(spec, section)
        spec = spec.model_copy(update={section: type(current).model_validate(current.model_dump() | {name: value})})
    case, mode = sbc.CASES["ipd"], sbc.MODES["full"]
    # the replicates of the SBC run (same seeds), so replicate r is the SBC run's replicate r
    template = sbc.case_template(case, Path(tempfile.mkdtemp()) / "template", args.seed)
    reps = sbc.simulate_replicates(case, mode, spec, template, args.seed)
    fitter = CompiledModel(reps.model, dataclasses.replace(mode.settings(), target_accept=args.target_accept))
    label = args.set or "default spec"
    print(f"{label}, target_accept {args.target_accept}, compile {fitter.compile_seconds:.0f} s")
    divergent_fits = total = 0
    start = time.perf_counter()
    for r in range(args.replicates):
        idata = fitter.fit_values(reps.data(r, None), seed=int(reps.fit_seeds[r]))
        div = idata.sample_stats["diverging"].values.ravel()
        steps = float(idata.sample_stats["n_steps"].mean()) if "n_steps" in idata.sample_stats else float("nan")
        truth = ", ".join(
            f"{n}={np.round(np.asarray(reps.draws[n][r]).ravel(), 2).tolist()}"
            for n in ("ipd_patient_sd", "ipd_residual_sd")
            if n in reps.draws
        )
        if not div.any():
            print(r, "no divergences", f"steps {steps:.0f};", truth, flush=True)
            continue
        divergent_fits += 1
        total += int(div.sum())
        out = divergent_draw_quantiles(idata, PARAMETERS)
        print(r, "divergences", int(div.sum()), f"steps {steps:.0f};", truth, "|", "; ".join(out), flush=True)
    print(
        f"{divergent_fits} of {args.replicates} fits with a divergence ({total} divergent draws), "
        f"{time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
