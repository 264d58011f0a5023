"""Simulated study folders: each level loads, carries its truth, and bad or double-counting requests are refused."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from bayes_stenosis import __version__
from bayes_stenosis import simulation as sim
from bayes_stenosis.study import load_study

EXPECTED_FILE = {
    "ipd": "ipd.csv",
    "arm_summary": "arm_summaries.csv",
    "arm_summary_change": "arm_summaries.csv",
    "contrast": "contrasts.csv",
    "threshold": "thresholds.csv",
}
EXPECTED_EVIDENCE = {**{lv: lv for lv in sim.LEVELS}, "arm_summary_change": "arm_summary"}


@pytest.fixture(scope="module")
def writable():
    """Questionnaire-like data (rounded, clipped to the scale) with some missed visits."""
    truth = sim.default_truth(round_to=1.0, clip=True, dropout=0.1, delta=-2.0)
    return truth, sim.simulate_patients(truth, seed=11)


@pytest.mark.parametrize("level", sim.LEVELS)
def test_write_study_each_level_loads(tmp_path, writable, level):
    truth, patients = writable
    folder = sim.write_study(tmp_path / level, truth, patients, levels=[level], seed=11)
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted(["study.toml", "truth.json", EXPECTED_FILE[level]])
    study = load_study(folder)
    assert study.simulated and study.id == "simulated"
    assert "SIMULATED trial (bayes_stenosis.simulation, seed 11)" in study.meta.study.title
    assert "SIMULATED" in study.meta.study.citation
    assert study.arms == ["reference_arm", "new_arm"]
    assert study.arm_sizes() == {"reference_arm": 20, "new_arm": 20}
    assert {a.n_source for a in study.meta.arms.values()} == {"simulated"}
    assert study.times == [4.0, 8.0] and study.outcomes == truth.outcome_names
    for o in truth.outcomes:
        spec = study.outcome(o.name)
        assert spec.direction == "lower_is_better"
        assert (spec.margin, spec.reference_sd) == (o.margin, o.sd)
        assert spec.margin_source == spec.reference_sd_source == "simulation truth"
        assert (spec.scale_min, spec.scale_max) == (o.scale_min, o.scale_max)
    by_cell = study.evidence_by_cell()
    assert set(by_cell.evidence) == {EXPECTED_EVIDENCE[level]} and len(by_cell) == 8
    frame = study.evidence[EXPECTED_EVIDENCE[level]]
    assert len(frame) > 0 and (frame.source == "SIMULATED (seed 11)").all()
    # truth.json beside it round-trips
    back, record = sim.read_truth(folder)
    assert back == truth
    assert record["seed"] == 11 and record["package_version"] == __version__
    assert record["level"] == level
    raw = json.loads((folder / "truth.json").read_text())
    assert raw["truth"] == truth.to_dict()


def test_written_numbers_are_the_functions_numbers(tmp_path, writable):
    truth, patients = writable
    folder = sim.write_study(tmp_path / "c", truth, patients, levels=["contrast"], seed=11)
    loaded = load_study(folder).evidence["contrast"]
    direct = sim.contrasts_from_patients(patients, truth)
    for col in ("estimate", "ci_low", "ci_high", "se", "p_value", "df"):
        np.testing.assert_array_equal(loaded[col].to_numpy(), direct[col].to_numpy())
    folder = sim.write_study(tmp_path / "i", truth, patients, levels=["ipd"], seed=11)
    ipd = load_study(folder).evidence["ipd"]
    np.testing.assert_array_equal(ipd.value.to_numpy(), patients.value.to_numpy())
    assert ipd.value.isna().sum() == patients.value.isna().sum() > 0
    folder = sim.write_study(tmp_path / "a", truth, patients, levels=["contrast"], seed=11, contrast_method="ancova")
    assert set(load_study(folder).evidence["contrast"].measure) == {"ancova"}


@pytest.mark.parametrize("pair", list(itertools.combinations(sim.LEVELS, 2)))
def test_write_study_refuses_double_counting(tmp_path, writable, pair):
    truth, patients = writable
    with pytest.raises(ValueError, match="one evidence level"):
        sim.write_study(tmp_path / "x", truth, patients, levels=list(pair), seed=11)
    assert not (tmp_path / "x").exists()


def test_write_study_refuses_bad_requests(tmp_path, writable):
    truth, patients = writable
    with pytest.raises(ValueError, match="one evidence level"):
        sim.write_study(tmp_path / "x", truth, patients, levels=[], seed=11)
    with pytest.raises(ValueError, match="one evidence level"):
        sim.write_study(tmp_path / "x", truth, patients, levels=["ipd", "ipd"], seed=11)
    with pytest.raises(ValueError, match="unknown evidence level"):
        sim.write_study(tmp_path / "x", truth, patients, levels=["abstract"], seed=11)
    with pytest.raises(ValueError, match="seed"):
        sim.write_study(tmp_path / "x", truth, patients, levels=["ipd"], seed=12)
    with pytest.raises(ValueError, match="study_id"):
        sim.write_study(tmp_path / "x", truth, patients, levels=["ipd"], seed=11, study_id="Sim-1")
    assert not (tmp_path / "x").exists()
    # unclipped scores fall off the scale: the loader would refuse them, so write_study does
    loose = sim.default_truth(n_per_arm=(200, 200))
    loose_patients = sim.simulate_patients(loose, seed=3)
    with pytest.raises(ValueError, match="clip=True"):
        sim.write_study(tmp_path / "x", loose, loose_patients, levels=["ipd"], seed=3)
    assert not (tmp_path / "x").exists()
    # ... but its arm summaries are fine
    sim.write_study(tmp_path / "y", loose, loose_patients, levels=["arm_summary"], seed=3)
    assert load_study(tmp_path / "y").simulated


def test_write_study_never_clobbers(tmp_path, writable):
    truth, patients = writable
    folder = sim.write_study(tmp_path / "s", truth, patients, levels=["contrast"], seed=11)
    with pytest.raises(FileExistsError):
        sim.write_study(folder, truth, patients, levels=["threshold"], seed=11)
    sim.write_study(folder, truth, patients, levels=["threshold"], seed=11, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == [
        "study.toml",
        "thresholds.csv",
        "truth.json",
    ]
    assert load_study(folder).levels_present() == ["threshold"]
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="did not write"):
        sim.write_study(folder, truth, patients, levels=["ipd"], seed=11, overwrite=True)
    assert (folder / "thresholds.csv").exists()
