"""What a run folder keeps of its inputs, so plots and the report never look outside the folder.

At fit time (:func:`write_run_inputs`):

* ``inputs/``: byte copies of the study files the loader read (``study.toml`` and the evidence
  CSVs, each row with its ``source``) and of the model spec TOML (with its comments, which are the
  priors' justifications); their SHA-256 is in ``manifest.json``.
* ``observed_quantities.csv``: one row per element of every observed variable of the model
  (``observed_data`` in ``posterior.nc``), saying what it is: arm, time, outcome, statistic, and how
  to turn the stored (standardized) value into natural units. The posterior predictive plot and
  the report label their rows with it. Patient-level data are described by their per-cell
  summaries (``ipd_cell_mean`` / ``ipd_cell_sd``, natural units), which replace the per-patient
  replicates in the predictive groups.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

#: Columns of observed_quantities.csv.
OBSERVED_COLUMNS = (
    "variable",
    "index",
    "source_row",
    "label",
    "arm",
    "time",
    "outcome",
    "statistic",
    "transform",
    "scale",
    "unit",
)


def write_run_inputs(folder: Path, study, spec_path: Path | None, inputs) -> None:
    """Copy the study files and the spec into ``folder/inputs`` and write ``observed_quantities.csv``.

    Parameters
    ----------
    folder
        The (temporary) run folder.
    study
        The loaded :class:`bayes_stenosis.study.Study` (its ``files`` are copied).
    spec_path
        The model spec TOML that was loaded (None for a spec built in memory: not copied).
    inputs
        The :class:`bayes_stenosis.model.ModelInputs` the model was built from.
    """
    target = Path(folder) / "inputs"
    (target / "study").mkdir(parents=True, exist_ok=True)
    for name, path in sorted(study.files.items()):
        shutil.copyfile(path, target / "study" / Path(name).name)
    if spec_path is not None:
        shutil.copyfile(spec_path, target / "spec.toml")
    units = {o: study.outcome(o).unit for o in inputs.coords["outcome"]}
    observed_quantities(inputs, units).to_csv(Path(folder) / "observed_quantities.csv", index=False)


def observed_quantities(inputs, units: dict[str, str]) -> pd.DataFrame:
    """Describe every element of the model's observed variables (see the module docstring).

    ``transform`` is ``"identity"`` (natural value = stored x ``scale``), ``"sqrt"`` (the stored
    value is a squared standardized SD: natural SD = sqrt(stored) x ``scale``) or ``"event"`` (a
    threshold statement: 1 = the reported event, e.g. "P>0.05 between arms").
    """
    rows = [row for block in inputs.arm_blocks for row in _arm_summary_rows(inputs, block, units)]
    rows += _contrast_rows(inputs.contrasts, units)
    rows += _threshold_rows(inputs.thresholds, units)
    ipd = getattr(inputs, "ipd", None)
    if ipd is not None:
        rows += _patient_rows(ipd, inputs.coords["arm"], units)
    return pd.DataFrame(rows, columns=list(OBSERVED_COLUMNS))


def _row(units, variable, index, arm, t, o, statistic, transform, scale, label=None, source_row=None) -> dict:
    """One row of observed_quantities.csv (the label defaults to "<arm>: <statistic>, <outcome> week <t>")."""
    return {
        "variable": variable,
        "index": int(index),
        "source_row": source_row,
        "label": label or f"{arm}: {statistic}, {o} week {t:g}",
        "arm": arm,
        "time": float(t) if t is not None else np.nan,
        "outcome": o,
        "statistic": statistic,
        "transform": transform,
        "scale": float(scale),
        "unit": units.get(o, ""),
    }


def _arm_summary_rows(inputs, block, units: dict[str, str]) -> list[dict]:
    """One arm's summaries: mean changes, then change SDs, then baseline SDs (one per outcome) and
    follow-up SDs of the cells reported as scores, in the order of the model's observed variables."""
    times, outcomes, scale = inputs.coords["time"], inputs.coords["outcome"], inputs.scale
    arm = inputs.coords["arm"][block.arm_index]
    t_idx, o_idx = np.asarray(block.time_index), np.asarray(block.outcome_index)
    rows = [
        _row(units, f"obs_mean_change_{arm}", i, arm, times[ti], outcomes[oi], "mean change", "identity", scale[oi])
        for i, (ti, oi) in enumerate(zip(t_idx, o_idx, strict=True))
    ]
    is_change = ~np.isnan(block.sd_change)
    for k, i in enumerate(np.flatnonzero(is_change)):
        oi, ti = o_idx[i], t_idx[i]
        rows.append(
            _row(units, f"obs_sd_change_{arm}", k, arm, times[ti], outcomes[oi], "SD of change", "sqrt", scale[oi])
        )
    isc = np.flatnonzero(~is_change)
    if not len(isc):
        return rows
    for k, oi in enumerate(np.unique(o_idx[isc])):
        label = f"{arm}: baseline SD, {outcomes[oi]}"
        rows.append(
            _row(units, f"obs_sd_baseline_{arm}", k, arm, 0.0, outcomes[oi], "baseline SD", "sqrt", scale[oi], label)
        )
    for k, i in enumerate(isc):
        oi, ti = o_idx[i], t_idx[i]
        rows.append(
            _row(units, f"obs_sd_followup_{arm}", k, arm, times[ti], outcomes[oi], "follow-up SD", "sqrt", scale[oi])
        )
    return rows


def _contrast_rows(contrasts: pd.DataFrame, units: dict[str, str]) -> list[dict]:
    """The reported differences (``obs_contrast``), one per contrasts.csv row the model uses."""
    rows = []
    for i, rec in enumerate(contrasts.to_dict("records") if len(contrasts) else []):
        label = f"reported difference, {rec['outcome']} week {rec['time']:g} (contrasts.csv row {rec['row']})"
        rows.append(
            _row(
                units,
                "obs_contrast",
                i,
                "new minus reference",
                rec["time"],
                rec["outcome"],
                "reported difference",
                "identity",
                1,
                label=label,
                source_row=rec["row"],
            )
        )
    return rows


def _threshold_rows(thresholds: pd.DataFrame, units: dict[str, str]) -> list[dict]:
    """The threshold statements (``threshold_event``: 1 = the reported event), one per thresholds.csv row."""
    rows = []
    for i, rec in enumerate(thresholds.to_dict("records") if len(thresholds) else []):
        if rec["comparison"] == "between":
            what = f"between arms P{rec['relation']}{rec['alpha']:g}"
            arm = "between arms"
        else:
            arm = rec["arm"]
            what = f"within {arm} P{rec['relation']}{rec['alpha']:g}"
        label = f"{rec['outcome']} week {rec['time']:g}: {what} (thresholds.csv row {rec['row']})"
        rows.append(
            _row(units, "threshold_event", i, arm, rec["time"], rec["outcome"], what, "event", 1, label, rec["row"])
        )
    return rows


def _patient_rows(ipd, arms: list[str], units: dict[str, str]) -> list[dict]:
    """The per-cell summaries of the patients (``model.terms.ipd.ipd_predictive_summary``); index = position
    in the flattened (arm, ipd_visit, ipd_outcome) array, visits baseline first."""
    rows = []
    visits = [None, *ipd.times]
    for variable, statistic in (("ipd_cell_mean", "mean score"), ("ipd_cell_sd", "SD of scores")):
        index = 0
        for arm in arms:
            for t in visits:
                for o in ipd.outcomes:
                    when = "baseline" if t is None else f"week {t:g}"
                    label = f"{arm}: {statistic}, {o} {when} (patients)"
                    rows.append(_row(units, variable, index, arm, t, o, statistic, "identity", 1, label=label))
                    index += 1
    return rows
