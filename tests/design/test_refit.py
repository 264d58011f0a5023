"""The full-refit path: a handful of simulated trials fitted with the package's model (slow), its study
folders, and its streams aligned with the fast path's."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_stenosis.design import (
    FastTrial,
    RefitSettings,
    design_analysis,
    design_inputs_from_run,
    refit_trial_from_run,
)
from bayes_stenosis.engine import dask_client
from bayes_stenosis.run import load_run
from bayes_stenosis.study import load_study
from bayes_stenosis.study.writer import write_folder


def refit_task(run_folder, **kw):
    run = load_run(run_folder)
    inputs = design_inputs_from_run(run, change_sd=1.2, analysis_prior="flat", **kw)
    return refit_trial_from_run(run, inputs, (40,), RefitSettings(chains=2, draws=200, tune=200))


def test_a_trials_study_folder_is_a_valid_simulated_study(pristine_run, tmp_path):
    task = refit_task(pristine_run, effect=0.1)
    truth, sigma = task.inputs.sample(np.random.default_rng(0))
    means, sds = task.arm_summaries(truth, sigma, 40, np.random.default_rng(1))
    study = load_study(write_folder(tmp_path / "trial", task.study_files(means, sds, 40)))
    assert study.meta.study.simulated and study.meta.study.n_randomised_total == 80
    rows = study.evidence["arm_summary"]
    assert len(rows) == 2 * len(task.inputs.cells) and set(rows["kind"]) == {"change"} and (rows["n"] == 40).all()


def test_refit_streams_match_the_fast_paths_truths(pristine_run):
    task = refit_task(pristine_run)
    fast = FastTrial(task.inputs, task.ns)
    for trial in range(3):
        a = task.inputs.sample(np.random.default_rng(trial))[0]
        b = [r["truth"] for r in fast(trial, np.random.default_rng(trial)) if r["scope"] == "cell"]
        assert a.tolist() == b


@pytest.mark.slow
def test_refits_decide_as_the_truth_says_at_large_n(pristine_run):
    """Two trials of 200 per arm, each fitted (2 x 200 draws): with no true difference every cell is
    declared equivalent (SE 0.12 SD against margins of 0.6-0.75 SD); with a difference of 3 SD none is."""
    with dask_client(workers=1, processes=False) as (client, _):
        results = {
            effect: design_analysis(
                pristine_run,
                n_per_arm=[200],
                trials=2,
                seed=4,
                effect=effect,
                change_sd=1.2,
                analysis_prior="flat",
                method="refit",
                refit=RefitSettings(chains=2, draws=200, tune=200),
                client=client,
            )
            for effect in (0.0, 3.0)
        }
    null, far = (results[e].design for e in (0.0, 3.0))
    assert (null["assurance"] == 1).all() and (null["prob_truth_inside"] == 1).all()
    assert (far["assurance"] == 0).all() and (far["prob_wrong_equivalent"] == 0).all()
    assert "full refit" in results[0.0].manifest["settings"]["method"]
