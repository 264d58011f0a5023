"""Where the divergent draws of simulated threshold fits sit in the posterior (a diagnosis, not a benchmark).

Refits the first N trials of the threshold coverage test (``tests/calibration/test_coverage.py``,
``coverage_design``: ODI + RMDQ, week 8, 20 per arm, truths from the prior, seed 2024, the test's
sampler settings; prior predictive draws are taken one at a time, so the first N are the test's) and prints,
per fit with divergences, the median quantile of the divergent draws among the others for each
parameter (a funnel shows tau near 0).

Usage (repository root): ``python benchmarks/diagnose_threshold_divergences.py 15``
"""

import sys
import tempfile
from pathlib import Path

from divergences import divergent_draw_quantiles  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "calibration"))
import test_coverage as tc  # noqa: E402

from bayes_stenosis.calibration import model_for  # noqa: E402
from bayes_stenosis.inference import CompiledModel  # noqa: E402
from bayes_stenosis.testing import spec_variant  # noqa: E402

# the latents of the per-statement path (threshold_*) and of the joint statement term (threshold_joint_*)
PARAMETERS = [
    "tau",
    "sigma_change",
    "rho",
    "Delta",
    "threshold_latent",
    "threshold_chi2",
    "threshold_joint_raw",
    "threshold_joint_chi2",
    "trial_sd_ratio",
]


def main(trials: int) -> None:
    spec, make = tc.coverage_design(
        Path(tempfile.mkdtemp()),
        "threshold",
        20,
        replicates=trials,
        spec=spec_variant(thresholds={"kinds_as_data": True}),
    )
    fitter = None
    for k in range(trials):
        trial = make(k)
        model, _ = model_for(trial.folder, spec, "weakly_informative")
        fitter = fitter or CompiledModel(model, tc.SETTINGS)
        idata = fitter.fit(model, seed=trial.seed)  # the seed coverage_study gives trial k
        div = idata.sample_stats["diverging"].values.ravel()
        if not div.any():
            print(k, "no divergences")
            continue
        out = divergent_draw_quantiles(idata, PARAMETERS)
        print(k, "divergences", int(div.sum()), "; ".join(out))


if __name__ == "__main__":
    main(int(sys.argv[1]))
