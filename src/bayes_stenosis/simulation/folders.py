"""Simulated trials as study folders (one evidence level each, with ``truth.json``) and reading the truth back."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from bayes_stenosis import __version__
from bayes_stenosis.simulation.evidence import (
    arm_arrays,
    contrasts_from_patients,
    summarise_arms,
    thresholds_from_patients,
)
from bayes_stenosis.simulation.expected import expected_scores
from bayes_stenosis.simulation.truths import ARMS, NEW_ARM, REFERENCE_ARM, OutcomeTruth, TrialTruth
from bayes_stenosis.study import EVIDENCE_FILES, StudyFile
from bayes_stenosis.study.writer import dumps_toml, evidence_csv, write_folder

LEVELS = ("ipd", "arm_summary", "arm_summary_change", "contrast", "threshold")
TRUTH_FILE = "truth.json"

_STUDY_ID = re.compile(r"^[a-z0-9_]+$")


_LEVEL_FILE = {
    "ipd": "ipd",
    "arm_summary": "arm_summary",
    "arm_summary_change": "arm_summary",
    "contrast": "contrast",
    "threshold": "threshold",
}

_LEVEL_TEXT = {
    "ipd": "ipd.csv: the simulated patients' scores (an empty value is a missed visit)",
    "arm_summary": "arm_summaries.csv: n, mean and SD of the scores per arm and time",
    "arm_summary_change": "arm_summaries.csv: n, mean and SD of the change from baseline per arm",
    "contrast": "contrasts.csv: new minus reference per follow-up cell, with CI, SE, p and df",
    "threshold": (
        "thresholds.csv: P<alpha / P>alpha statements between the arms (pooled two-sample t "
        "on change) and within each arm (paired t)"
    ),
}


def _check_levels(levels: Sequence[str]) -> str:
    if isinstance(levels, str):
        levels = [levels]
    levels = list(levels)
    unknown = [lv for lv in levels if lv not in LEVELS]
    if unknown:
        raise ValueError(f"unknown evidence level(s) {unknown} (choose from {', '.join(LEVELS)})")
    if not levels:
        raise ValueError(f"give one evidence level (one of {', '.join(LEVELS)})")
    if len(levels) > 1:
        raise ValueError(
            f"one evidence level per simulated study (got {levels}): every level is derived "
            "from the same patients and gives every follow-up cell, so two levels would count "
            "the same evidence twice (the threshold level already includes the within-arm "
            "statements); write one folder per level"
        )
    return levels[0]


def _check_request(truth: TrialTruth, patients: pd.DataFrame, levels: Sequence[str], seed: int, study_id: str) -> str:
    """The one evidence level asked for, after checking the study id, the seed and the patients."""
    level = _check_levels(levels)
    if not isinstance(study_id, str) or not _STUDY_ID.match(study_id):
        raise ValueError(f"study_id must be lower-case letters, digits and '_' (got {study_id!r})")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an integer (got {seed!r})")
    attr_seed = patients.attrs.get("seed")
    if attr_seed is not None and int(attr_seed) != int(seed):
        raise ValueError(f"seed {int(seed)} does not match the patients' seed {attr_seed}")
    arrays = arm_arrays(patients, truth)
    for arm in ARMS:
        if arrays[arm].shape[0] != truth.n(arm):
            raise ValueError(f"{arm}: {arrays[arm].shape[0]} patients, the truth says {truth.n(arm)}")
    return level


def _ipd_frame(truth: TrialTruth, patients: pd.DataFrame, source: str) -> pd.DataFrame:
    """The patients as ``ipd.csv`` rows, refusing scores the loader would refuse (outside the scale)."""
    frame = patients[["patient", "arm", "outcome", "time", "value"]].copy()
    for out in truth.outcomes:
        vals = frame.loc[frame["outcome"] == out.name, "value"]
        bad = vals[(vals < out.scale_min) | (vals > out.scale_max)]
        if len(bad):
            raise ValueError(
                f"{len(bad)} simulated {out.name} scores lie outside the scale "
                f"{out.scale_min:g}-{out.scale_max:g} (e.g. {bad.iloc[0]:g}); the study loader "
                "refuses them in ipd.csv: simulate with clip=True"
            )
    frame["source"] = source
    frame["note"] = np.where(frame["value"].isna(), "missed visit (simulated MCAR dropout)", "")
    return frame


def _evidence_frame(
    level: str,
    truth: TrialTruth,
    patients: pd.DataFrame,
    *,
    seed: int,
    contrast_method: Literal["change_t", "ancova"],
    ci_level: float,
    alpha: float,
) -> pd.DataFrame:
    """The rows of the level's CSV; an underflowed p-value is left empty (the loader wants p in (0, 1])."""
    if level == "ipd":
        frame = _ipd_frame(truth, patients, f"SIMULATED (seed {seed})")
    elif level in ("arm_summary", "arm_summary_change"):
        kind = "score" if level == "arm_summary" else "change"
        frame = summarise_arms(patients, truth, kind=kind, seed=seed)
    elif level == "contrast":
        frame = contrasts_from_patients(patients, truth, method=contrast_method, ci_level=ci_level, seed=seed)
    else:
        frame = thresholds_from_patients(patients, truth, alpha=alpha, seed=seed)
    if "p_value" in frame.columns:
        under = frame["p_value"] <= 0
        frame.loc[under, "note"] = frame.loc[under, "note"] + "; exact p below floating-point range"
        frame.loc[under, "p_value"] = math.nan
    return frame


def _study_notes(truth: TrialTruth, level: str, seed: int) -> list[str]:
    """``study.notes``: what generated the data, the level and the generative model's settings."""
    rounding = "none" if truth.round_to is None else f"{truth.round_to:g}"
    clipping = "yes (biases the means; truth.json gives the expected observed changes)" if truth.clip else "no"
    return [
        "SIMULATED data, not patients: generated by bayes_stenosis.simulation "
        f"(version {__version__}) with seed {seed}; the truth is in {TRUTH_FILE} beside this file.",
        f"Evidence level: {level} ({_LEVEL_TEXT[level]}).",
        "Generative model: baseline b = mu + sd*z, follow-up y = mu + change[arm,t] + "
        "sd*(rho*z + sqrt(1-rho^2)*u), z ~ N(0, outcome_corr), u ~ N(0, time_corr (x) C); "
        "true mean change = change_reference (+ delta in the new arm).",
        f"time_corr = {truth.time_corr:g}; dropout (MCAR, per patient x visit) = "
        f"{truth.dropout:g}; round_to = {rounding}; clip to scale = {clipping}.",
    ]


def _study_doc(truth: TrialTruth, level: str, seed: int, study_id: str) -> dict[str, Any]:
    """The ``study.toml`` document of a simulated study (checked against the loader's schema)."""
    doc: dict[str, Any] = {
        "schema_version": 1,
        "study": _study_table(truth, level, seed, study_id),
        "arms": _arm_tables(truth),
        "outcomes": {out.name: _outcome_table(out) for out in truth.outcomes},
        "times": {
            "unit": "weeks",
            "baseline": 0.0,
            "follow_up": list(truth.follow_up),
            "source": "simulation design",
        },
    }
    StudyFile.model_validate(doc)  # the loader's own schema, before anything is written
    return doc


def _study_table(truth: TrialTruth, level: str, seed: int, study_id: str) -> dict[str, Any]:
    """``[study]``: id, a title and citation that say SIMULATED, the design and the randomised total."""
    tag = _tag(seed)
    n_ref, n_new = truth.n_per_arm
    return {
        "id": study_id,
        "title": tag,
        "citation": f"{tag}. Not a real trial: no patients were enrolled.",
        "design": "parallel",
        "n_randomised_total": n_ref + n_new,
        "n_randomised_total_source": "simulated",
        "allocation": f"simulated: {n_ref} reference, {n_new} new",
        "simulated": True,
        "notes": _study_notes(truth, level, seed),
    }


def _arm_tables(truth: TrialTruth) -> dict[str, dict[str, Any]]:
    """``[arms.*]``: the reference and the new arm with their randomised n."""
    n_ref, n_new = truth.n_per_arm
    return {
        REFERENCE_ARM: {
            "label": "Reference arm (SIMULATED)",
            "role": "reference",
            "n_randomised": n_ref,
            "n_source": "simulated",
        },
        NEW_ARM: {
            "label": "New arm (SIMULATED)",
            "role": "new",
            "n_randomised": n_new,
            "n_source": "simulated",
        },
    }


def _outcome_table(out: OutcomeTruth) -> dict[str, Any]:
    """``[outcomes.<name>]``: the instrument, its range, margin and SD, each sourced to the simulation truth."""
    return {
        "label": f"{out.name} (SIMULATED)",
        "instrument": out.instrument,
        "unit": out.unit,
        "scale_min": out.scale_min,
        "scale_max": out.scale_max,
        "scale_source": "simulation truth",
        "direction": "lower_is_better",
        "margin": out.margin,
        "margin_source": "simulation truth",
        "reference_sd": out.sd,
        "reference_sd_source": "simulation truth",
    }


def _tag(seed: int) -> str:
    return f"SIMULATED trial (bayes_stenosis.simulation, seed {seed})"


def _truth_record(truth: TrialTruth, level: str, seed: int, study_id: str) -> dict[str, Any]:
    """``truth.json``: the truth, the seed, the package version and the expected observed changes."""
    expected = expected_scores(truth)
    follow = expected[expected["time"] > 0]
    shape = (len(truth.follow_up), len(truth.outcomes))
    change_obs = {
        arm: follow[follow["arm"] == arm]
        .pivot(index="time", columns="outcome", values="change")
        .reindex(index=list(truth.follow_up), columns=truth.outcome_names)
        .to_numpy()
        .reshape(shape)
        for arm in ARMS
    }
    record = {
        "generator": "bayes_stenosis.simulation",
        "package_version": __version__,
        "seed": seed,
        "study_id": study_id,
        "level": level,
        "arms": {"reference": REFERENCE_ARM, "new": NEW_ARM},
        "truth": truth.to_dict(),
        "expected": {
            "note": (
                "exact expected observed mean changes after rounding and clipping (equal to the "
                "truth when neither is applied); MCAR dropout does not change them"
            ),
            "change_reference": change_obs[REFERENCE_ARM].tolist(),
            "delta": (change_obs[NEW_ARM] - change_obs[REFERENCE_ARM]).tolist(),
        },
    }
    return record


def _clear_folder(folder: Path, overwrite: bool) -> None:
    """Refuse a non-empty folder unless ``overwrite``, and then only one holding write_study's own files."""
    ours = {"study.toml", TRUTH_FILE, *EVIDENCE_FILES.values()}
    if folder.exists():
        if not folder.is_dir():
            raise FileExistsError(f"{folder} exists and is not a folder")
        present = {p.name for p in folder.iterdir()}
        if present and not overwrite:
            raise FileExistsError(f"{folder} is not empty (pass overwrite=True to replace a simulated study)")
        if present - ours:
            raise FileExistsError(
                f"{folder} holds files write_study did not write "
                f"({', '.join(sorted(present - ours))}); refusing to overwrite"
            )
        for name in present:
            (folder / name).unlink()


def read_truth(folder: str | Path) -> tuple[TrialTruth, dict[str, Any]]:
    """Read ``truth.json`` from a simulated study folder: the truth and the whole record.

    The record holds ``seed``, ``package_version``, ``level`` and ``expected`` (the exact
    expected observed changes after rounding and clipping, :func:`expected_scores`).
    """
    record = json.loads((Path(folder) / TRUTH_FILE).read_text(encoding="utf-8"))
    return TrialTruth.from_dict(record["truth"]), record


def write_study(
    folder: Path,
    truth: TrialTruth,
    patients: pd.DataFrame,
    *,
    levels: Sequence[str],
    seed: int,
    study_id: str = "simulated",
    contrast_method: Literal["change_t", "ancova"] = "change_t",
    ci_level: float = 0.95,
    alpha: float = 0.05,
    overwrite: bool = False,
) -> Path:
    """Write one simulated trial as a study folder in the bundled format, with its truth.

    Parameters
    ----------
    folder
        Created if needed; must be empty unless ``overwrite`` (which replaces only the files
        this function writes: ``study.toml``, the evidence CSVs and ``truth.json``).
    truth, patients
        The truth and the patients simulated from it (:func:`simulate_patients`).
    levels
        Exactly one of ``ipd``, ``arm_summary`` (score form), ``arm_summary_change``,
        ``contrast``, ``threshold`` (between-arm and within-arm statements). Each level gives
        every follow-up cell's between-arm evidence from the same patients, so any two together
        would double count: ``ValueError``.
    seed
        The seed the patients were simulated with (checked against ``patients.attrs["seed"]``
        when present); written in the title, citation, every ``source`` and ``truth.json``.
    study_id
        ``study.id`` (lower-case letters, digits, ``_``).
    contrast_method, ci_level, alpha
        Passed to :func:`contrasts_from_patients` / :func:`thresholds_from_patients`.

    Returns
    -------
    pathlib.Path
        The folder. ``study.toml`` says ``simulated = true``; arms ``reference_arm`` /
        ``new_arm`` with their randomised n; outcomes with range, ``lower_is_better``, margin and
        ``reference_sd`` = the true SD (source "simulation truth"). ``truth.json`` holds
        ``truth.to_dict()``, the seed, the package version and the expected observed changes.

    Raises
    ------
    ValueError
        Two or unknown levels, a bad ``study_id``, a seed that does not match the patients, or
        (level ``ipd``) scores outside the scale range, which the loader refuses (simulate with
        ``clip=True``).
    FileExistsError
        ``folder`` is not empty and ``overwrite`` is false.
    """
    level = _check_request(truth, patients, levels, seed, study_id)
    seed = int(seed)
    frame = _evidence_frame(
        level, truth, patients, seed=seed, contrast_method=contrast_method, ci_level=ci_level, alpha=alpha
    )
    files = _study_files(truth, level, frame, seed, study_id)
    folder = Path(folder)
    _clear_folder(folder, overwrite)
    return write_folder(folder, files)


def _study_files(truth: TrialTruth, level: str, frame: pd.DataFrame, seed: int, study_id: str) -> dict[str, str]:
    """File name -> text of a simulated study: ``study.toml``, the level's evidence CSV and ``truth.json``."""
    file_level = _LEVEL_FILE[level]
    toml_text = dumps_toml(
        _study_doc(truth, level, seed, study_id),
        f"{_tag(seed)}.\nWritten by bayes_stenosis.simulation.write_study; not real data.",
    )
    truth_text = json.dumps(_truth_record(truth, level, seed, study_id), indent=2, allow_nan=False) + "\n"
    return {
        "study.toml": toml_text,
        EVIDENCE_FILES[file_level]: evidence_csv(file_level, frame),
        TRUTH_FILE: truth_text,
    }
