r"""Patient-level data as the ``ipd`` term uses them: standardized, centred arrays and missingness patterns.

Scores are centred on the pooled observed baseline mean :math:`m_o` and divided by the pooled baseline
SD :math:`s_o` of the patients (:func:`ipd_scale`), so :math:`x^b_{io} = (y^b_{io} - m_o)/s_o` and
:math:`x_{ito} = (y_{ito} - m_o)/s_o`. Patients are grouped by which follow-up cells they were observed
on (:meth:`IPDInputs.patterns`): the likelihood takes one Cholesky factor per pattern.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_stenosis.errors import InputError

__all__ = [
    "BASELINE_STATS",
    "PATTERN_STATS",
    "IPDInputs",
    "ipd_scale",
    "missing_table",
    "missing_text",
    "prepare_ipd_inputs",
]

#: Data containers of the sampled (sufficient-statistics) form: the baseline's, and each pattern's by prefix.
BASELINE_STATS = "ipd_stats_baseline"  # not ipd_baseline_*: per-pattern per-patient names (run.idata)
PATTERN_STATS = "ipd_stats_"


@dataclass
class IPDInputs:
    """Patient-level data as the model uses them (standardized, centred), plus what was missing."""

    outcome_index: np.ndarray  # (O,) into the model's outcome coord
    time_index: np.ndarray  # (T,) into the model's time coord
    outcomes: list[str]
    times: list[float]
    patients: np.ndarray  # (N,) ids
    arm_index: np.ndarray  # (N,) 0 = reference, 1 = new
    baseline: np.ndarray  # (N, O) standardized
    followup: np.ndarray  # (N, T, O) standardized, NaN = missing
    centre: np.ndarray  # (O,) natural units
    scale: np.ndarray  # (O,) natural units per standardized unit
    missing: pd.DataFrame = field(default_factory=pd.DataFrame)  # arm, time, outcome, patients, missing

    @property
    def observed(self) -> np.ndarray:
        return ~np.isnan(self.followup)

    def observed_arrays(self, patterns=None) -> dict[str, np.ndarray]:
        """Observed (standardized) values per likelihood variable: ``obs_ipd_baseline`` (N, O) and
        ``obs_ipd_followup_{pattern}`` (the pattern's patients x its observed cells k = t*O + o)."""
        n, n_t, n_o = self.followup.shape
        flat = self.followup.reshape(n, n_t * n_o)
        out = {"obs_ipd_baseline": self.baseline}
        for name, rows, cells in patterns if patterns is not None else self.patterns():
            out[f"obs_ipd_followup_{name}"] = flat[np.ix_(rows, cells)]
        return out

    def pattern_stats(self, rows: np.ndarray, cells: np.ndarray) -> np.ndarray:
        r"""Sufficient statistics of one missingness pattern, per arm: :math:`M_a = \sum_i u_i u_i^T` over
        the pattern's patients ``rows`` in arm :math:`a`, :math:`u_i = (x_{i,S}, x^b_{i\cdot}, 1)` (its
        observed follow-ups on ``cells``, every baseline, one). Shape (2, q, q), q = |S| + O + 1;
        :math:`M_a[-1, -1]` is the arm's number of patients, :math:`M_a[:, -1]` the sums of u."""
        n, n_t, n_o = self.followup.shape
        u = np.concatenate(
            [self.followup.reshape(n, n_t * n_o)[np.ix_(rows, cells)], self.baseline[rows], np.ones((len(rows), 1))],
            axis=1,
        )
        arm = self.arm_index[rows]
        return np.stack([u[arm == a].T @ u[arm == a] for a in (0, 1)])

    def baseline_stats(self) -> np.ndarray:
        r""":math:`\sum_i v_i v_i^T` over every patient, :math:`v_i = (x^b_{i\cdot}, 1)`: (O + 1, O + 1)."""
        v = np.concatenate([self.baseline, np.ones((len(self.baseline), 1))], axis=1)
        return v.T @ v

    def stats_values(self, replicate: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The sampled form's data containers (``ipd_stats_baseline``, ``ipd_stats_<pattern>``) for other
        values of the patient-level form's observed nodes (``obs_ipd_baseline``, ``obs_ipd_followup_<pattern>``
        as in :meth:`observed_arrays`), e.g. a prior predictive replicate: same patients, same patterns."""
        n, n_t, n_o = self.followup.shape
        flat = np.full((n, n_t * n_o), np.nan)
        patterns = self.patterns()
        for name, rows, cells in patterns:
            flat[np.ix_(rows, cells)] = replicate[f"obs_ipd_followup_{name}"]
        baseline = np.asarray(replicate["obs_ipd_baseline"], dtype=float)
        other = dataclasses.replace(self, baseline=baseline, followup=flat.reshape(n, n_t, n_o))
        out = {BASELINE_STATS: other.baseline_stats()}
        out |= {f"{PATTERN_STATS}{name}": other.pattern_stats(rows, cells) for name, rows, cells in patterns}
        return out

    def patterns(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(name, patient rows, observed cell indices k = t*O + o) per missingness pattern with data."""
        n, n_t, n_o = self.followup.shape
        mask = self.observed.reshape(n, n_t * n_o)
        weights = 1 << np.arange(n_t * n_o, dtype=np.int64)
        codes = mask.astype(np.int64) @ weights
        out = []
        for code in np.unique(codes):
            cells = np.flatnonzero(mask[np.flatnonzero(codes == code)[0]])
            if len(cells):
                out.append((f"m{int(code)}", np.flatnonzero(codes == code), cells))
        return out


def ipd_scale(study) -> dict[str, tuple[float, float]]:
    """Per IPD outcome: (pooled baseline SD, pooled baseline mean) over both arms, natural units.

    The pooled SD is :math:`\\sqrt{\\sum_a (n_a - 1) s_a^2 / \\sum_a (n_a - 1)}` of the baseline scores.
    """
    df = study.evidence["ipd"]
    base = df[(df.time == study.meta.times.baseline) & df.value.notna()]
    out = {}
    for o, sub in base.groupby("outcome", sort=False):
        groups = [g.value.to_numpy(dtype=float) for _, g in sub.groupby("arm")]
        dof = sum(len(g) - 1 for g in groups)
        if dof < 1:
            raise InputError(
                study.folder / "ipd.csv",
                f"outcome {o}: at least 3 patients with a baseline value are needed to scale the model",
                field="value",
            )
        pooled = math.sqrt(sum(float(np.sum((g - g.mean()) ** 2)) for g in groups) / dof)
        if not pooled > 0:
            raise InputError(study.folder / "ipd.csv", f"outcome {o}: every baseline value is the same", field="value")
        out[str(o)] = (pooled, float(sub.value.mean()))
    return out


def prepare_ipd_inputs(study, outcomes: list[str], times: list[float], arms: list[str]) -> IPDInputs | None:
    """The patient-level arrays of a validated study, or None without ``ipd.csv`` rows.

    Patients are ordered reference arm first, then by first appearance. A follow-up row that is absent
    counts as missing, like an empty value. Standardization uses :func:`ipd_scale`.
    """
    df = study.evidence["ipd"]
    if not len(df):
        return None
    baseline_time = study.meta.times.baseline
    ipd_outcomes = [o for o in outcomes if o in set(df.outcome)]
    follow = df[df.time != baseline_time]
    ipd_times = [t for t in times if t in set(follow.time)]
    scale_centre = ipd_scale(study)
    scale = np.array([scale_centre[o][0] for o in ipd_outcomes])
    centre = np.array([scale_centre[o][1] for o in ipd_outcomes])

    arm_of = df.drop_duplicates("patient").set_index("patient")["arm"]
    order = sorted(range(len(arm_of)), key=lambda k: (arms.index(arm_of.iloc[k]), k))
    patients = arm_of.index.to_numpy()[order]
    arm_index = np.array([arms.index(a) for a in arm_of.to_numpy()[order]], dtype="int64")

    columns = pd.MultiIndex.from_product([[baseline_time, *ipd_times], ipd_outcomes], names=["time", "outcome"])
    wide = df.pivot(index="patient", columns=["time", "outcome"], values="value").reindex(
        index=patients, columns=columns
    )
    values = wide.to_numpy(dtype=float).reshape(len(patients), len(ipd_times) + 1, len(ipd_outcomes))
    baseline = (values[:, 0, :] - centre) / scale
    followup = (values[:, 1:, :] - centre) / scale

    return IPDInputs(
        outcome_index=np.array([outcomes.index(o) for o in ipd_outcomes], dtype="int64"),
        time_index=np.array([times.index(t) for t in ipd_times], dtype="int64"),
        outcomes=ipd_outcomes,
        times=ipd_times,
        patients=patients,
        arm_index=arm_index,
        baseline=baseline,
        followup=followup,
        centre=centre,
        scale=scale,
        missing=missing_table(arms, arm_index, ipd_times, ipd_outcomes, followup),
    )


def missing_table(
    arms: list[str], arm_index: np.ndarray, times: list[float], outcomes: list[str], followup: np.ndarray
) -> pd.DataFrame:
    """Per arm x follow-up time x outcome: patients, observed and missing values (NaN in ``followup``)."""
    rows = []
    observed = ~np.isnan(followup)
    for a_idx, arm in enumerate(arms):
        in_arm = arm_index == a_idx
        for k, t in enumerate(times):
            for j, o in enumerate(outcomes):
                n_obs = int(observed[in_arm, k, j].sum())
                rows.append(
                    {
                        "arm": arm,
                        "time": t,
                        "outcome": o,
                        "patients": int(in_arm.sum()),
                        "observed": n_obs,
                        "missing": int(in_arm.sum()) - n_obs,
                    }
                )
    return pd.DataFrame(rows)


def missing_text(missing: pd.DataFrame) -> str:
    """One line: missing follow-up values per arm x time (summed over outcomes)."""
    if not len(missing):
        return "patient-level data: none"
    per = missing.groupby(["arm", "time"], sort=False)[["missing", "observed"]].sum().reset_index()
    parts = [
        f"{r.arm} t={r.time:g}: {int(r.missing)} of {int(r.missing + r.observed)}" for r in per.itertuples(index=False)
    ]
    return "missing IPD follow-up values (MAR given baseline, left out of the likelihood): " + "; ".join(parts)
