"""``design_analysis`` on a run folder (the synthetic run of tests/conftest.py): the design folder, its
manifest and checks, refusals, resumption from the trial store of a killed run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bayes_stenosis.design import FastTrial, design_analysis, design_inputs_from_run
from bayes_stenosis.engine import dask_client, map_trials
from bayes_stenosis.errors import InputError, OutputPathError
from bayes_stenosis.run import load_run
from bayes_stenosis.run.integrity import verify_folder


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2, processes=False) as (c, _):
        yield c


def test_design_folder_of_a_run(pristine_run, tmp_path, client):
    out = tmp_path / "design"
    result = design_analysis(
        pristine_run, n_per_arm=[80, 40], trials=60, seed=5, change_sd=1.2, out=out, client=client, batch_size=7
    )
    names = {p.name for p in out.iterdir()}
    assert {"design.csv", "target_n.csv", "trials.csv.gz", "assurance.png", "manifest.json"} <= names
    manifest = json.loads((out / "manifest.json").read_text())
    assert verify_folder(out, manifest) == []
    assert manifest["input_run_manifest_sha256"] and manifest["settings"]["n_per_arm"] == [40, 80]
    assert "stated: 1.2" in manifest["settings"]["assumptions"]["change_sd"]
    assert manifest["engine"]["trials_computed"] == 60
    assert not (tmp_path / ".design.trials").exists()  # published: the store is gone
    design = pd.read_csv(out / "design.csv")
    # 2 times x 2 outcomes cells, 2 joint_time rows, 1 joint_all, each at 2 n
    assert len(design) == (4 + 2 + 1) * 2 and (design["trials"] == 60).all()
    assert (design["assurance_low"] <= design["assurance"]).all() and (
        design["assurance"] <= design["assurance_high"]
    ).all()
    pd.testing.assert_frame_equal(design, result.design, check_dtype=False)
    # the same seed in memory, other batches: the same numbers
    again = design_analysis(pristine_run, n_per_arm=[40, 80], trials=60, seed=5, change_sd=1.2, client=client)
    pd.testing.assert_frame_equal(again.design, result.design)


def test_refusals(pristine_run, tmp_path, client):
    with pytest.raises(InputError, match="posterior.nc.*change_sd_ratio"):
        design_analysis(pristine_run, n_per_arm=[40], trials=5, client=client)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("mine")
    with pytest.raises(OutputPathError):
        design_analysis(pristine_run, n_per_arm=[40], trials=5, change_sd=1, out=tmp_path / "taken", client=client)
    assert (tmp_path / "taken" / "x").read_text() == "mine"


def test_a_killed_design_resumes_from_its_trial_store(pristine_run, tmp_path, client):
    inputs = design_inputs_from_run(load_run(pristine_run), change_sd=1.2)
    store = tmp_path / ".design.trials"  # what a killed `design --out tmp_path/design` leaves
    map_trials(FastTrial(inputs, (40,)), 20, root_seed=5, store_path=store, client=client, batch_size=10)
    result = design_analysis(
        pristine_run, n_per_arm=[40], trials=50, seed=5, change_sd=1.2, out=tmp_path / "design", client=client
    )
    assert (result.manifest["engine"]["trials_resumed"], result.manifest["engine"]["trials_computed"]) == (20, 30)
    fresh = design_analysis(pristine_run, n_per_arm=[40], trials=50, seed=5, change_sd=1.2, client=client)
    pd.testing.assert_frame_equal(result.trials, fresh.trials)
