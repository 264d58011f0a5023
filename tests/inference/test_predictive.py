"""``inference.predictive``: replicates of patient-level data drawn a chunk of parameter draws at a time,
given the draws (only the observed nodes redrawn), and reduced chunk by chunk to the IPD term's per-cell
summaries exactly as the whole would be.

Simulated patients come from :mod:`bayes_stenosis.simulation` with a very wide scale range (no score clipped).
"""

from __future__ import annotations

import numpy as np

from bayes_stenosis.testing import ipd_truth, study_model, write_ipd_study


def test_chunked_predictive_redraws_only_the_observed_nodes(tmp_path, caplog):
    """Replicates are drawn given the parameter draws: PyMC must not redraw Delta (its prior's
    hyperparameters are data containers, which PyMC treats as changed unless the trace carries them)."""
    import logging

    import pymc as pm

    from bayes_stenosis.inference import chunked_predictive

    folder = write_ipd_study(tmp_path / "p", ipd_truth(n=5), seed=2)
    model, _ = study_model(folder, prior_sampling=True)
    observed = [rv.name for rv in model.observed_RVs]
    with model:
        params = pm.sample_prior_predictive(draws=4, random_seed=1, var_names=[v.name for v in model.free_RVs]).prior
        with caplog.at_level(logging.INFO, logger="pymc"):
            chunked_predictive(params, observed, lambda ds: ds, 2, seed=5)
    sampled = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Sampling:")]
    assert sampled == [f"Sampling: [{', '.join(sorted(observed))}]"] * 2


def test_chunked_predictive_equals_summary_of_whole(tmp_path):
    """``inference.sample`` draws patient-level replicates a chunk of draws at a time and reduces each
    chunk (memory): reducing chunk by chunk gives exactly the summaries of the concatenated replicates
    (same seed), along the parameter draws' own draw coordinates, when the chunk size does not divide
    the draws."""
    import pymc as pm

    from bayes_stenosis.inference import chunked_predictive, draws_per_chunk
    from bayes_stenosis.model.terms.ipd import ipd_predictive_summary

    folder = write_ipd_study(tmp_path / "c", ipd_truth(n=6, dropout=0.3), seed=2)
    model, inputs = study_model(folder, prior_sampling=True)  # the patient-level form, which has replicates
    observed = [rv.name for rv in model.observed_RVs]
    with model:
        prior = pm.sample_prior_predictive(draws=7, random_seed=1, var_names=[v.name for v in model.free_RVs])
        params = prior.prior
        reduce = lambda ds: ipd_predictive_summary(ds, inputs.ipd, list(inputs.coords["arm"]))  # noqa: E731
        whole, obs = chunked_predictive(params, observed, lambda ds: ds, 3, seed=5)
        chunked, _ = chunked_predictive(params, observed, reduce, 3, seed=5)
    assert list(chunked["draw"].values) == list(params["draw"].values) == list(range(7))
    expected = reduce(whole)
    for name in ("ipd_cell_mean", "ipd_cell_sd"):
        np.testing.assert_array_equal(chunked[name].values, expected[name].values)
    assert set(obs.data_vars) == set(observed)
    # chunks are as many draws as fit the memory budget: values per draw = the observed patient values
    values = sum(v.size for v in inputs.ipd.observed_arrays().values())
    assert draws_per_chunk(model, observed, 2, 1.0) == 2**20 // (8 * 2 * values)
    assert draws_per_chunk(model, observed, 4, 1e-9) == 1
