"""The trial engine on an in-process LocalCluster: results independent of the worker count and the batch
size, resumption after a killed run, refusal of a store made for other work."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_stenosis.engine import TrialStore, dask_client, map_trials, trial_rng, trial_seed
from bayes_stenosis.errors import InputError
from tests.engine.tasks import NormalMeans


def run(tmp_path, name, *, workers, task=None, n_trials=30, batch_size=4, seed=11):
    with dask_client(workers=workers, processes=False) as (client, _):
        return map_trials(
            task or NormalMeans(),
            n_trials,
            root_seed=seed,
            store_path=tmp_path / name,
            client=client,
            batch_size=batch_size,
        )


def test_trial_streams_are_keyed_by_index():
    """Child i of SeedSequence.spawn, without spawning the others; different trials differ."""
    children = np.random.SeedSequence(5).spawn(4)
    assert trial_seed(5, 3).generate_state(4).tolist() == children[3].generate_state(4).tolist()
    assert trial_rng(5, 1).random() != trial_rng(5, 2).random()


def test_same_seed_same_table_with_one_or_two_workers(tmp_path):
    one = run(tmp_path, "one", workers=1)
    two = run(tmp_path, "two", workers=2, batch_size=7)
    pd.testing.assert_frame_equal(one.table, two.table)
    assert len(one.table) == 60 and one.table["trial"].nunique() == 30
    # the rows are the task's numbers for each trial's own stream
    expected = NormalMeans()(17, trial_rng(11, 17))
    got = one.table[one.table["trial"] == 17]
    assert got["mean"].tolist() == [r["mean"] for r in expected]
    other_seed = run(tmp_path, "other", workers=1, seed=12)
    assert not np.allclose(other_seed.table["mean"], one.table["mean"])


def test_killed_run_resumes_from_saved_batches(tmp_path):
    run(tmp_path, "s", workers=1, n_trials=12)  # saved for sure before the kill
    with pytest.raises(RuntimeError, match="trial 21 killed"):
        run(tmp_path, "s", workers=1, task=NormalMeans(fail_on=21), batch_size=4)
    saved = TrialStore(tmp_path / "s", "normal-means-v1", 11).done_trials()
    assert set(range(12)) <= saved and 21 not in saved and len(saved) % 4 == 0  # whole batches only
    (tmp_path / "s" / ".part-junk.csv.tmp-1").write_text("a half-written part")  # a batch in flight when killed
    resumed = run(tmp_path, "s", workers=2, batch_size=4)
    assert resumed.n_resumed == len(saved) and resumed.n_computed == 30 - len(saved)
    pd.testing.assert_frame_equal(resumed.table, run(tmp_path, "fresh", workers=1).table)
    # more trials later: only the new ones are computed
    more = run(tmp_path, "s", workers=1, n_trials=35)
    assert (more.n_resumed, more.n_computed) == (30, 5)
    part = run(tmp_path, "s", workers=1, n_trials=range(10, 20))  # a range of the run: its rows only
    assert part.n_computed == 0 and sorted(part.table["trial"].unique()) == list(range(10, 20))


def test_store_of_other_work_is_refused(tmp_path):
    run(tmp_path, "s", workers=1, n_trials=4)
    with pytest.raises(InputError, match="engine.json.*other work.*fingerprint"):
        run(tmp_path, "s", workers=1, n_trials=4, task=NormalMeans(fingerprint="other"))
    with pytest.raises(InputError, match="root_seed"):
        run(tmp_path, "s", workers=1, n_trials=4, seed=3)
