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
    baseline = study.meta.times.baseline

    # --- scale per outcome: pooled baseline SD from the data, else the cited reference SD -----
    scale, scale_source = [], []
    for o in outcomes:
        base = usable[(usable.outcome == o) & (usable.kind == "score") & (usable.time == baseline)]
        if o in ipd_scales:
            scale.append(ipd_scales[o][0])
            scale_source.append("pooled baseline SD from ipd.csv")
        elif set(base.arm) == set(arms):
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
    scale_arr = np.asarray(scale, dtype=float)

    # --- margins --------------------------------------------------------------------------------
    margins = dict(margins or {})
    unknown = set(margins) - set(outcomes)
    if unknown:
        raise InputError(None, f"margin override for unknown outcome(s): {', '.join(sorted(unknown))}")
    margin_vals = []
    for o in outcomes:
        m = margins.get(o, study.outcome(o).margin)
        if m is None:
            raise InputError(
                _study_file(study),
                f"outcome {o} has no equivalence margin: add margin and margin_source (or pass --margin {o}=VALUE)",
                field=f"outcomes.{o}.margin",
            )
        if not m > 0:
            raise InputError(None, f"margin for {o} must be > 0 (got {m})")
        margin_vals.append(float(m))
    margin_arr = np.asarray(margin_vals)
    directions = [study.outcome(o).direction for o in outcomes]
    if len(set(directions)) != 1:
        raise InputError(
            _study_file(study),
            "all outcomes must share one direction in this version",
            field="outcomes",
        )
    new_better_sign = -1.0 if directions[0] == "lower_is_better" else 1.0

    # --- arm sizes --------------------------------------------------------------------------------
    arm_sizes, size_source = study.randomised_arm_sizes()

    # --- arm summary blocks ---------------------------------------------------------------------
    arm_cells = cells[cells.evidence == "arm_summary"]
    blocks = []
    for a_idx, a in enumerate(arms):
        rows = usable[usable.arm == a]
        t_idx, o_idx, mean, n, sdc, sdb, nb, sdf, labels = [], [], [], [], [], [], [], [], []
        for rec in arm_cells.to_dict("records"):
            t, o = rec["time"], rec["outcome"]
            s = scale_arr[outcomes.index(o)]
            change = rows[(rows.outcome == o) & (rows.kind == "change") & (rows.time == t)]
            if len(change):
                r = change.iloc[0]
                mean.append(r["mean"] / s)
                n.append(r["n"])
                sdc.append(r["sd"] / s)
                sdb.append(np.nan), nb.append(np.nan), sdf.append(np.nan)
                labels.append(f"arm_summaries.csv row {r['row']}")
            else:
                b = rows[(rows.outcome == o) & (rows.kind == "score") & (rows.time == baseline)].iloc[0]
                f = rows[(rows.outcome == o) & (rows.kind == "score") & (rows.time == t)].iloc[0]
                mean.append((f["mean"] - b["mean"]) / s)
                n.append(f["n"])
                sdc.append(np.nan)
                sdb.append(b["sd"] / s), nb.append(b["n"]), sdf.append(f["sd"] / s)
                labels.append(f"arm_summaries.csv rows {b['row']}, {f['row']}")
            t_idx.append(times.index(t))
            o_idx.append(outcomes.index(o))
        if t_idx:
            blocks.append(
                ArmSummaryBlock(
                    arm_index=a_idx,
                    time_index=np.asarray(t_idx),
                    outcome_index=np.asarray(o_idx),
                    mean_change=np.asarray(mean, dtype=float),
                    n=np.asarray(n, dtype=float),
                    sd_change=np.asarray(sdc, dtype=float),
                    sd_baseline=np.asarray(sdb, dtype=float),
                    n_baseline=np.asarray(nb, dtype=float),
                    sd_followup=np.asarray(sdf, dtype=float),
                    rows=labels,
                )
            )

    # --- contrasts ------------------------------------------------------------------------------
    contrasts = contrast_standard_errors(study)
    contrast_cells = set(map(tuple, cells.loc[cells.evidence == "contrast", ["time", "outcome"]].values))
    contrasts = contrasts[[(t, o) in contrast_cells for t, o in contrasts[["time", "outcome"]].values]]

    # --- thresholds -----------------------------------------------------------------------------
    thr_cells = set(map(tuple, cells.loc[cells.evidence == "threshold", ["time", "outcome"]].values))
    thr = study.evidence["threshold"]
    thr = thr[[(t, o) in thr_cells for t, o in thr[["time", "outcome"]].values]].copy()
    if len(thr) and not arm_sizes:
        raise InputError(
            _study_file(study),
            "threshold statements need the arm sizes: give arms.<arm>.n_randomised or study.n_randomised_total",
            field="study.n_randomised_total",
        )

    return ModelInputs(
        coords={"arm": arms, "time": times, "outcome": outcomes},
        scale=scale_arr,
        scale_source=scale_source,
        margins=margin_arr,
        margin_std=margin_arr / scale_arr,
        new_better_sign=new_better_sign,
        direction=directions,
        instruments=[study.outcome(o).instrument for o in outcomes],
        arm_sizes=arm_sizes,
        arm_size_source=size_source,
        evidence_by_cell=cells,
        arm_blocks=blocks,
        contrasts=contrasts.reset_index(drop=True),
        thresholds=thr.reset_index(drop=True),
        ipd=prepare_ipd_inputs(study, outcomes, times, arms),
    )


def resolve_prior(spec: ModelSpec, prior_set: str, inputs: ModelInputs) -> ResolvedPrior:
    """The concrete prior on Delta[t] for a named prior set and this study's margins."""
    if prior_set not in spec.prior_sets:
        hint = ""
        if prior_set == "sceptical":
            hint = "; 'sceptical' was renamed 'small_difference' (it favours equivalence)"
        raise InputError(None, f"unknown prior set {prior_set!r} (the spec has: {', '.join(spec.prior_sets)}){hint}")
    reference_margin = float(np.min(inputs.margin_std))
    return spec.prior_sets[prior_set].resolve(reference_margin, inputs.new_better_sign, spec.hierarchy.outcome_pooling)
