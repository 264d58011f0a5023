r"""An external simulator of patient-level trials, written independently of the model's generative form.

Plain numpy (it does not use :mod:`bayes_stenosis.simulation`, whose generative form is the model's
own). Four outcomes, baseline and follow-ups at weeks 4 and 8, two arms of ``n`` patients. Natural
units; outcome :math:`o` has baseline mean :math:`m_o` and SD :math:`s_o` (:data:`OUTCOMES`). The
processes (:data:`PROCESSES`), all with baselines :math:`b_i \sim MVN(m, S R_b S)`, :math:`R_b`
exchangeable 0.5:

* ``no_patient_effect`` (the issue's): :math:`y_{ito} = m_o + 0.6(b_{io} - m_o) + c_{a,t,o} + e_{ito}`,
  :math:`e_{it\cdot} \sim MVN(0, 0.64\,S R_e S)`, :math:`R_e` exchangeable 0.6, independent across visits.
* ``patient_effect``: as above with :math:`e_{ito} = u_{io} + w_{ito}`, half of the residual variance a
  patient effect shared by both visits.
* ``unstructured``: residual correlation 0.7 across visits of one outcome, 0.5 across outcomes of one
  visit, 0.35 otherwise (not a Kronecker product); residual SD growing 0.7, 0.9 of :math:`s_o`.
* ``skewed_bounded``: the ``no_patient_effect`` scores with centred Gamma(2) residuals (skewed), rounded
  to integers and clipped to ``[0, max_o]``.
* ``baseline_dropout``: ``no_patient_effect`` with monotone dropout depending on the baseline:
  :math:`P(\text{missing from week } t) = \text{logit}^{-1}(-2.2 + t/4\cdot 0.5 + 0.8 \bar z^b_i)`
  (:math:`\bar z^b_i` the patient's mean standardized baseline), about 15-30 % missing by week 8:
  missing at random given the baseline.

The true mean change :math:`c_{a,t,o}` has reference value :math:`-(0.4, 0.6)s_o` at weeks 4, 8 and
treatment difference ``delta_sd`` :math:`\times s_o`. ``true_delta`` is the difference in mean follow-up
(= mean change) between arms: exact where no bound clips, a Monte Carlo value (2 x 400,000 patients,
common random numbers) for ``skewed_bounded``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from bayes_stenosis.study.writer import dumps_toml, evidence_csv, write_folder

__all__ = ["OUTCOMES", "PROCESSES", "TIMES", "ExternalTrial", "simulate_external", "true_delta", "write_external_study"]

# name, baseline mean, SD, upper bound (scores are clipped to [0, bound] in ``skewed_bounded`` only)
OUTCOMES = (("ODI", 45.0, 16.0, 100.0), ("RMDQ", 14.0, 5.0, 24.0), ("NRS_leg", 6.0, 2.0, 10.0), ("ZCQ", 3.2, 0.6, 5.0))
TIMES = (4.0, 8.0)
PROCESSES = ("no_patient_effect", "patient_effect", "unstructured", "skewed_bounded", "baseline_dropout")
# treatment difference per outcome in SDs of the outcome, the same at both visits (outcomes differ a little)
DELTA_SD = np.array([0.2, 0.1, 0.25, 0.15])
REFERENCE_CHANGE_SD = np.array([-0.4, -0.6])  # per visit


@dataclass(frozen=True)
class ExternalTrial:
    """One simulated trial: ``arm`` (N,), ``baseline`` (N, O), ``followup`` (N, T, O) NaN = missing."""

    process: str
    seed: int
    arm: np.ndarray
    baseline: np.ndarray
    followup: np.ndarray


def _exchangeable(k: int, r: float) -> np.ndarray:
    return np.full((k, k), r) + (1 - r) * np.eye(k)


def _residual_cov(process: str) -> np.ndarray:
    """Residual covariance over cells k = t*O + o, in SD units of each outcome."""
    n_o, n_t = len(OUTCOMES), len(TIMES)
    r_out = _exchangeable(n_o, 0.6)
    if process == "patient_effect":
        return 0.64 * (0.5 * np.kron(np.ones((n_t, n_t)), r_out) + 0.5 * np.kron(np.eye(n_t), r_out))
    if process == "unstructured":
        same_o = np.kron(np.ones((n_t, n_t)), np.eye(n_o)).astype(bool)
        same_t = np.kron(np.eye(n_t), np.ones((n_o, n_o))).astype(bool)
        corr = np.where(same_t, 0.5, np.where(same_o, 0.7, 0.35))
        np.fill_diagonal(corr, 1.0)
        sd = np.repeat([0.7, 0.9], n_o)
        return corr * np.outer(sd, sd)
    return 0.64 * np.kron(np.eye(n_t), r_out)


def _scores(process: str, n_per_arm: int, rng: np.random.Generator, delta_sd: np.ndarray):
    n_o, n_t = len(OUTCOMES), len(TIMES)
    mean = np.array([o[1] for o in OUTCOMES])
    sd = np.array([o[2] for o in OUTCOMES])
    arm = np.repeat([0, 1], n_per_arm)
    n = len(arm)
    z_b = rng.multivariate_normal(np.zeros(n_o), _exchangeable(n_o, 0.5), size=n)
    if process == "skewed_bounded":  # centred, unit-variance Gamma(2) residuals, correlated via a normal copula
        # a shared skewed component plus an independent one per visit keeps the 0.6 cross-outcome correlation
        g_shared = (rng.gamma(2.0, 1.0, size=(n, n_t, 1)) - 2.0) / np.sqrt(2.0)
        g_own = (rng.gamma(2.0, 1.0, size=(n, n_t, n_o)) - 2.0) / np.sqrt(2.0)
        e = 0.8 * (np.sqrt(0.6) * g_shared + np.sqrt(0.4) * g_own)
    else:
        e = rng.multivariate_normal(np.zeros(n_t * n_o), _residual_cov(process), size=n).reshape(n, n_t, n_o)
    change = REFERENCE_CHANGE_SD[None, :, None] + arm[:, None, None] * delta_sd[None, None, :]
    follow = 0.6 * z_b[:, None, :] + change + e
    baseline = mean + sd * z_b
    followup = mean + sd * follow
    if process == "skewed_bounded":
        upper = np.array([o[3] for o in OUTCOMES])
        baseline = np.clip(np.round(baseline), 0, upper)
        followup = np.clip(np.round(followup), 0, upper)
    if process == "baseline_dropout":
        zbar = z_b.mean(axis=1)
        gone = np.zeros(n, dtype=bool)
        for t, week in enumerate(TIMES):
            p = 1 / (1 + np.exp(-(-2.2 + 0.5 * week / 4 + 0.8 * zbar)))
            gone |= rng.uniform(size=n) < p
            followup[gone, t, :] = np.nan
    return arm, baseline, followup


def simulate_external(process: str, n_per_arm: int, seed: int, delta_sd: np.ndarray = DELTA_SD) -> ExternalTrial:
    """One SIMULATED trial of ``process`` (:data:`PROCESSES`) with ``n_per_arm`` patients per arm."""
    if process not in PROCESSES:
        raise ValueError(f"unknown process {process!r}; one of {', '.join(PROCESSES)}")
    rng = np.random.default_rng(seed)
    arm, baseline, followup = _scores(process, n_per_arm, rng, np.asarray(delta_sd, dtype=float))
    return ExternalTrial(process, seed, arm, baseline, followup)


def true_delta(process: str, delta_sd: np.ndarray = DELTA_SD) -> np.ndarray:
    """(T, O) true difference in mean change (natural units): exact, or Monte Carlo for ``skewed_bounded``
    (its MC standard error is below 0.3 % of an outcome's SD)."""
    sd = np.array([o[2] for o in OUTCOMES])
    if process != "skewed_bounded":
        return np.tile(np.asarray(delta_sd) * sd, (len(TIMES), 1))
    return _monte_carlo_delta(process, tuple(np.asarray(delta_sd, dtype=float)))


@lru_cache(maxsize=8)
def _monte_carlo_delta(process: str, delta_sd: tuple) -> np.ndarray:
    big = 400_000
    trial = simulate_external(process, big, seed=20260101, delta_sd=np.array(delta_sd))
    return trial.followup[big:].mean(axis=0) - trial.followup[:big].mean(axis=0)


def write_external_study(folder, trial: ExternalTrial) -> object:
    """Write ``trial`` as a patient-level study folder (``study.toml``, ``ipd.csv``), labelled SIMULATED."""
    tag = f"SIMULATED (external simulator, process {trial.process}, seed {trial.seed})"
    arms = ("reference_arm", "new_arm")
    rows = []
    for i in range(len(trial.arm)):
        pid = f"p{i:05d}"
        for j in range(trial.baseline.shape[1]):  # a trial may keep only the first outcomes
            name = OUTCOMES[j][0]
            rows.append((pid, arms[trial.arm[i]], name, 0.0, trial.baseline[i, j]))
            for t, week in enumerate(TIMES):
                rows.append((pid, arms[trial.arm[i]], name, week, trial.followup[i, t, j]))
    frame = pd.DataFrame(rows, columns=["patient", "arm", "outcome", "time", "value"])
    frame["source"] = tag
    n_ref = int((trial.arm == 0).sum())
    doc = {
        "schema_version": 1,
        "study": {
            "id": "simulated_external",
            "title": f"{tag}",
            "citation": f"{tag}. Not a real trial: no patients were enrolled.",
            "design": "parallel",
            "n_randomised_total": len(trial.arm),
            "n_randomised_total_source": "simulated",
            "allocation": f"simulated: {n_ref} reference, {len(trial.arm) - n_ref} new",
            "simulated": True,
            "notes": [
                f"SIMULATED data from bayes_stenosis.calibration.external_ipd ({trial.process}, seed {trial.seed})."
            ],
        },
        "arms": {
            "reference_arm": {
                "label": "Reference (SIMULATED)",
                "role": "reference",
                "n_randomised": n_ref,
                "n_source": "simulated",
            },
            "new_arm": {
                "label": "New (SIMULATED)",
                "role": "new",
                "n_randomised": len(trial.arm) - n_ref,
                "n_source": "simulated",
            },
        },
        "outcomes": {
            name: {
                "label": f"{name} (SIMULATED)",
                "instrument": "other",
                "unit": "points",
                "scale_min": -1000.0,
                "scale_max": 1000.0,
                "scale_source": "simulation",
                "direction": "lower_is_better",
                "margin": 0.5 * sd,
                "margin_source": "simulation",
                "reference_sd": sd,
                "reference_sd_source": "simulation",
            }
            for name, _m, sd, _u in OUTCOMES[: trial.baseline.shape[1]]
        },
        "times": {"unit": "weeks", "baseline": 0.0, "follow_up": list(TIMES), "source": "simulation design"},
    }
    header = f"# {tag}: not real data.\n"
    return write_folder(folder, {"study.toml": dumps_toml(doc, header=header), "ipd.csv": evidence_csv("ipd", frame)})
