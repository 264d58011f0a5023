"""Model inputs: everything the builder needs from a validated study, as plain numpy arrays (pure,
testable without PyMC): :class:`ModelInputs` from :func:`prepare_inputs`, and the prior set resolved
against the study's margins (:func:`resolve_prior`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_stenosis.errors import InputError
from bayes_stenosis.model.terms.ipd.data import IPDInputs, ipd_scale, prepare_ipd_inputs
from bayes_stenosis.spec import ModelSpec, ResolvedPrior
from bayes_stenosis.study import Study, contrast_standard_errors


@dataclass
class ArmSummaryBlock:
    """The arm-summary cells of one arm."""

    arm_index: int
    time_index: np.ndarray
    outcome_index: np.ndarray
    mean_change: np.ndarray  # standardized
    n: np.ndarray
    # change-form cells: reported change SD (standardized), NaN for score-form cells
    sd_change: np.ndarray
    # score-form cells: reported baseline/follow-up SDs and n (standardized), NaN for change-form
    sd_baseline: np.ndarray
    n_baseline: np.ndarray
    sd_followup: np.ndarray
    rows: list[str] = field(default_factory=list)


@dataclass
class ModelInputs:
    coords: dict[str, list]
    scale: np.ndarray  # per outcome, natural units per standardized unit
    scale_source: list[str]
    margins: np.ndarray  # natural units
    margin_std: np.ndarray  # standardized
    new_better_sign: float  # -1 when a negative delta favours the new arm
    direction: list[str]
    instruments: list[str]
    arm_sizes: dict[str, float]
    arm_size_source: str
    evidence_by_cell: pd.DataFrame
    arm_blocks: list[ArmSummaryBlock]
    contrasts: pd.DataFrame
    thresholds: pd.DataFrame
    ipd: IPDInputs | None = None  # patient-level data (model.terms.ipd.data)


def _study_file(study: Study) -> str:
    return str(study.folder / "study.toml")


def prepare_inputs(study: Study, spec: ModelSpec, margins: dict[str, float] | None = None) -> ModelInputs:
    """Turn a validated study into the arrays the model uses (standardized where noted).

    Parameters
    ----------
    margins
        Per-outcome margin overrides in natural units; others come from ``study.toml``.
    """
    outcomes, times, arms = study.outcomes, study.times, study.arms
    cells = study.evidence_by_cell()
    ipd_scales = ipd_scale(study) if len(study.evidence["ipd"]) else {}
    usable = study.usable_arm_summaries()
    scale, scale_source = _outcome_scales(study, usable, ipd_scales)
    margin_arr = _margins(study, margins)
    directions = _shared_direction(study)
    arm_sizes, size_source = study.randomised_arm_sizes()
    blocks = _arm_summary_blocks(study, cells, usable, scale)
    contrasts = _contrast_rows(study, cells)
    thresholds = _threshold_rows(study, cells, arm_sizes)
    return ModelInputs(
        coords={"arm": arms, "time": times, "outcome": outcomes},
        scale=scale,
        scale_source=scale_source,
        margins=margin_arr,
        margin_std=margin_arr / scale,
        new_better_sign=-1.0 if directions[0] == "lower_is_better" else 1.0,
        direction=directions,
        instruments=[study.outcome(o).instrument for o in outcomes],
        arm_sizes=arm_sizes,
        arm_size_source=size_source,
        evidence_by_cell=cells,
        arm_blocks=blocks,
        contrasts=contrasts.reset_index(drop=True),
        thresholds=thresholds.reset_index(drop=True),
        ipd=prepare_ipd_inputs(study, outcomes, times, arms),
    )


def _outcome_scales(study: Study, usable: pd.DataFrame, ipd_scales: dict) -> tuple[np.ndarray, list[str]]:
    """The scale of each outcome and where it comes from: the pooled baseline SD of the patients or of
    both arms' summaries, else the study's cited reference SD."""
    baseline = study.meta.times.baseline
    scale, scale_source = [], []
    for o in study.outcomes:
        base = usable[(usable.outcome == o) & (usable.kind == "score") & (usable.time == baseline)]
        if o in ipd_scales:
            scale.append(ipd_scales[o][0])
            scale_source.append("pooled baseline SD from ipd.csv")
        elif set(base.arm) == set(study.arms):
            dof = (base.n - 1).to_numpy()
            pooled = math.sqrt(float(np.sum(dof * base.sd.to_numpy() ** 2) / np.sum(dof)))
            scale.append(pooled)
            scale_source.append("pooled baseline SD from arm_summaries.csv")
        elif study.outcome(o).reference_sd is not None:
            scale.append(float(study.outcome(o).reference_sd))
            scale_source.append("reference_sd: " + study.outcome(o).reference_sd_source)
        else:
            raise InputError(
                _study_file(study),
                f"outcome {o} needs a reference SD to put the model on a standardized scale "
                "(the data give no baseline SDs for both arms): add reference_sd and reference_sd_source",
                field=f"outcomes.{o}.reference_sd",
            )
    return np.asarray(scale, dtype=float), scale_source


def _margins(study: Study, overrides: dict[str, float] | None) -> np.ndarray:
    """The equivalence margin of each outcome (natural units): an override, else the study's."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(study.outcomes)
    if unknown:
        raise InputError(None, f"margin override for unknown outcome(s): {', '.join(sorted(unknown))}")
    margin_vals = []
    for o in study.outcomes:
        m = overrides.get(o, study.outcome(o).margin)
        if m is None:
            raise InputError(
                _study_file(study),
                f"outcome {o} has no equivalence margin: add margin and margin_source (or pass --margin {o}=VALUE)",
                field=f"outcomes.{o}.margin",
            )
        if not m > 0:
            raise InputError(None, f"margin for {o} must be > 0 (got {m})")
        margin_vals.append(float(m))
    return np.asarray(margin_vals)


def _shared_direction(study: Study) -> list[str]:
    """Each outcome's direction (``lower_is_better`` / ``higher_is_better``), checked to be one for all."""
    directions = [study.outcome(o).direction for o in study.outcomes]
    if len(set(directions)) != 1:
        raise InputError(
            _study_file(study),
            "all outcomes must share one direction in this version",
            field="outcomes",
        )
    return directions


def _arm_summary_blocks(
    study: Study, cells: pd.DataFrame, usable: pd.DataFrame, scale: np.ndarray
) -> list[ArmSummaryBlock]:
    """One :class:`ArmSummaryBlock` per arm over the arm-summary cells, in ``evidence_by_cell`` order."""
    outcomes, baseline = study.outcomes, study.meta.times.baseline
    records = cells[cells.evidence == "arm_summary"].to_dict("records")
    if not records:
        return []
    time_index = np.asarray([study.times.index(rec["time"]) for rec in records])
    outcome_index = np.asarray([outcomes.index(rec["outcome"]) for rec in records])
    blocks = []
    for a_idx, a in enumerate(study.arms):
        rows = usable[usable.arm == a]
        cell_values = [
            _arm_summary_cell(rows, rec["time"], rec["outcome"], scale[outcomes.index(rec["outcome"])], baseline)
            for rec in records
        ]
        mean, n, sdc, sdb, nb, sdf, labels = (list(column) for column in zip(*cell_values, strict=True))
        blocks.append(
            ArmSummaryBlock(
                arm_index=a_idx,
                time_index=time_index.copy(),
                outcome_index=outcome_index.copy(),
                mean_change=np.asarray(mean, dtype=float),
                n=np.asarray(n, dtype=float),
                sd_change=np.asarray(sdc, dtype=float),
                sd_baseline=np.asarray(sdb, dtype=float),
                n_baseline=np.asarray(nb, dtype=float),
                sd_followup=np.asarray(sdf, dtype=float),
                rows=labels,
            )
        )
    return blocks


def _arm_summary_cell(rows: pd.DataFrame, t, o: str, s: float, baseline) -> tuple:
    """One arm's cell (time ``t``, outcome ``o``) divided by the outcome's scale ``s``: (mean change, n,
    change SD, baseline SD, baseline n, follow-up SD, source rows). A reported change gives the change SD
    (the other SDs NaN); baseline and follow-up scores give their SDs and the baseline n (change SD NaN)."""
    change = rows[(rows.outcome == o) & (rows.kind == "change") & (rows.time == t)]
    if len(change):
        r = change.iloc[0]
        return r["mean"] / s, r["n"], r["sd"] / s, np.nan, np.nan, np.nan, f"arm_summaries.csv row {r['row']}"
    scores = rows[(rows.outcome == o) & (rows.kind == "score")]
    b = scores[scores.time == baseline].iloc[0]
    f = scores[scores.time == t].iloc[0]
    label = f"arm_summaries.csv rows {b['row']}, {f['row']}"
    return (f["mean"] - b["mean"]) / s, f["n"], np.nan, b["sd"] / s, b["n"], f["sd"] / s, label


def _cells_of(cells: pd.DataFrame, level: str) -> set[tuple]:
    """The (time, outcome) cells whose between-arm evidence comes from ``level``."""
    return set(map(tuple, cells.loc[cells.evidence == level, ["time", "outcome"]].values))


def _contrast_rows(study: Study, cells: pd.DataFrame) -> pd.DataFrame:
    """The reported contrasts (with their SEs) of the cells that take their evidence from contrasts."""
    contrasts = contrast_standard_errors(study)
    contrast_cells = _cells_of(cells, "contrast")
    return contrasts[[(t, o) in contrast_cells for t, o in contrasts[["time", "outcome"]].values]]


def _threshold_rows(study: Study, cells: pd.DataFrame, arm_sizes: dict[str, float]) -> pd.DataFrame:
    """The threshold statements of the cells that take their evidence from them (they need the arm sizes)."""
    thr_cells = _cells_of(cells, "threshold")
    thr = study.evidence["threshold"]
    thr = thr[[(t, o) in thr_cells for t, o in thr[["time", "outcome"]].values]].copy()
    if len(thr) and not arm_sizes:
        raise InputError(
            _study_file(study),
            "threshold statements need the arm sizes: give arms.<arm>.n_randomised or study.n_randomised_total",
            field="study.n_randomised_total",
        )
    return thr


def resolve_prior(spec: ModelSpec, prior_set: str, inputs: ModelInputs) -> ResolvedPrior:
    """The concrete prior on Delta[t] for a named prior set and this study's margins."""
    if prior_set not in spec.prior_sets:
        hint = ""
        if prior_set == "sceptical":
            hint = "; 'sceptical' was renamed 'small_difference' (it favours equivalence)"
        raise InputError(None, f"unknown prior set {prior_set!r} (the spec has: {', '.join(spec.prior_sets)}){hint}")
    reference_margin = float(np.min(inputs.margin_std))
    return spec.prior_sets[prior_set].resolve(reference_margin, inputs.new_better_sign, spec.hierarchy.outcome_pooling)
