"""Where the divergent draws of simulated threshold fits sit in the posterior (a diagnosis, not a benchmark).

Fits the first N replicates of the threshold coverage test's design (``tests/test_coverage.py``: ODI + RMDQ,
week 8, 20 per arm, truths from the prior, seed 2024) and prints, per fit with divergences, the median
quantile of the divergent draws among the others for each parameter (a funnel shows tau near 0).

Usage (repository root): ``python benchmarks/diagnose_threshold_divergences.py 15``
"""

import dataclasses
import pathlib
import sys
import tempfile

import numpy as np

sys.path.insert(0, "tests")
import test_coverage as tc
from helpers import spec_variant

from bayes_stenosis import simulate as sim
from bayes_stenosis.validation import CompiledFitter, draw_truths_from_prior, model_for

spec = spec_variant(thresholds={"kinds_as_data": True})
tmp = pathlib.Path(tempfile.mkdtemp())
n, seed = 20, 2024
base = sim.default_truth(
    outcomes=tc.OUTCOMES,
    outcome_corr=np.array([[1.0, 0.75], [0.75, 1.0]]),
    follow_up=(8.0,),
    change_reference=np.zeros((1, 2)),
    n_per_arm=(n, n),
)
template = sim.write_study(
    tmp / "template", base, sim.simulate_patients(base, seed=seed), levels=["threshold"], seed=seed
)
model, _ = model_for(template, spec, "weakly_informative")
prior = draw_truths_from_prior(model, 60, seed=seed)
fitter = None
for k in range(int(sys.argv[1])):
    truth = dataclasses.replace(base, change_reference=prior["change_natural"][k, 0], delta=prior["delta_natural"][k])
    folder = sim.write_study(
        tmp / f"rep{k}", truth, sim.simulate_patients(truth, seed=seed + 1 + k), levels=["threshold"], seed=seed + 1 + k
    )
    m, _ = model_for(folder, spec, "weakly_informative")
    fitter = fitter or CompiledFitter(m, tc.SETTINGS)
    idata = fitter.fit(m, seed=k)
    div = idata.sample_stats["diverging"].values.ravel()
    if div.sum() == 0:
        print(k, "no divergences")
        continue
    post = idata.posterior
    out = []
    for v in ["tau", "sigma_change", "rho", "Delta", "threshold_latent", "threshold_chi2", "trial_sd_ratio"]:
        if v not in post:
            continue
        x = post[v].values.reshape(div.size, -1)
        for j in range(x.shape[1]):
            q = np.mean(x[~div, j][:, None] < x[div, j][None, :], axis=0)  # quantile of divergent draws among the rest
            out.append(f"{v}[{j}] q={np.median(q):.2f}")
    print(k, "divergences", int(div.sum()), "; ".join(out))
