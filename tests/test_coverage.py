"""Interval coverage of delta over simulated trials whose truths are drawn from the model's prior.

With truths drawn from the prior the posterior intervals are calibrated by construction, so the
90 % equal-tailed interval must cover the truth at the nominal rate. The check is the 99 % binomial
band around 0.9 for the number of (trial x cell) pairs; the observed coverage and its 95 %
Clopper-Pearson interval are printed (pytest -s) and recorded in VALIDATION.md.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bayes_stenosis import simulate as sim
from bayes_stenosis.inference import SamplerSettings
from bayes_stenosis.spec import load_spec
from bayes_stenosis.validation import coverage_study, draw_truths_from_prior, expected_coverage_band, model_for

pytestmark = pytest.mark.slow

OUTCOMES = (
    sim.OutcomeTruth("ODI", "ODI", 0, 100, 45, 16, 0.6, 10),
    sim.OutcomeTruth("RMDQ", "RMDQ", 0, 24, 14, 5, 0.5, 5),
)
SETTINGS = SamplerSettings(name="nutpie", chains=2, draws=500, tune=500, target_accept=0.95, seed=0)
REPLICATES = 100


def run_coverage(
    tmp_path, level: str, n: int, replicates: int = REPLICATES, seed: int = 2024, spec=None, cell_summary=None
):
    if spec is None:
        spec, _ = load_spec()
    base = sim.default_truth(
        outcomes=OUTCOMES,
        outcome_corr=np.array([[1.0, 0.75], [0.75, 1.0]]),
        follow_up=(8.0,),
        change_reference=np.zeros((1, 2)),
        n_per_arm=(n, n),
    )
    patients = sim.simulate_patients(base, seed=seed)
    template = sim.write_study(tmp_path / "template", base, patients, levels=[level], seed=seed)
    model, _ = model_for(template, spec, "weakly_informative")
    prior = draw_truths_from_prior(model, replicates, seed=seed)

    def make(k: int):
        truth = dataclasses.replace(
            base, change_reference=prior["change_natural"][k, 0], delta=prior["delta_natural"][k]
        )
        folder = sim.write_study(
            tmp_path / f"rep{k}",
            truth,
            sim.simulate_patients(truth, seed=seed + 1 + k),
            levels=[level],
            seed=seed + 1 + k,
        )
        return folder, np.asarray(truth.delta)

    return coverage_study(
        make, spec, "weakly_informative", range(replicates), SETTINGS, prob=0.9, cell_summary=cell_summary
    )


@pytest.mark.parametrize(
    "level, n, replicates",
    [
        ("contrast", 20, REPLICATES),
        ("contrast", 200, REPLICATES),
        # arm summaries: the outcome deviations are integrated out (change_parameterisation =
        # "marginalised"), which removed the divergences and long trajectories of the non-centred form
        ("arm_summary_change", 20, REPLICATES),
        ("arm_summary_change", 200, REPLICATES),
    ],
)
def test_coverage_with_truths_from_the_prior(tmp_path, level, n, replicates):
    result = run_coverage(tmp_path, level, n, replicates=replicates)
    lo, hi = expected_coverage_band(0.9, result.overall["cells"])
    print(f"\n{level} n={n}/arm: {result.text()}; divergent fits {result.overall['divergent_fits']}")
    assert lo <= result.overall["coverage"] <= hi, result.text()
