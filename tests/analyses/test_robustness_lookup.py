"""``analyses.matching_robustness``: a run shows the sweep beside it only if it is a sweep of the same
study files and spec."""

from __future__ import annotations

import json

import pandas as pd

from bayes_stenosis.analyses import matching_robustness


def _sweep_beside(run, study_sha: str, spec_sha: str) -> None:
    folder = run.parent / "sensitivity"
    folder.mkdir()
    pd.DataFrame({"scope": ["cell"], "time": [4.0], "outcome": ["ODI"], "prob_equivalence_min": [0.6]}).to_csv(
        folder / "robustness.csv", index=False
    )
    manifest = {"study": {"sha256": study_sha}, "spec": {"sha256": spec_sha}, "n_fits": 3}
    (folder / "manifest.json").write_text(json.dumps(manifest) + "\n")


def test_sweep_of_the_same_study_and_spec_is_found(run_copy):
    run = json.loads((run_copy / "manifest.json").read_text())
    _sweep_beside(run_copy, run["study"]["sha256"], run["spec"]["sha256"])
    robust, sweep = matching_robustness(run_copy)
    assert robust["prob_equivalence_min"].tolist() == [0.6] and sweep["n_fits"] == 3


def test_sweep_of_other_data_or_another_spec_is_ignored(run_copy, tmp_path):
    assert matching_robustness(run_copy) is None  # no sweep at all
    run = json.loads((run_copy / "manifest.json").read_text())
    _sweep_beside(run_copy, "0" * 64, run["spec"]["sha256"])
    assert matching_robustness(run_copy) is None
    (run_copy.parent / "sensitivity" / "manifest.json").write_text(
        json.dumps({"study": {"sha256": run["study"]["sha256"]}, "spec": {"sha256": "1" * 64}}) + "\n"
    )
    assert matching_robustness(run_copy) is None
