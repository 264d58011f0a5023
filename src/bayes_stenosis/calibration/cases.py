"""The designs the calibration studies simulate: SBC cases and modes, their template study folders.

A case is a study design (evidence level, outcomes, follow-up times, n per arm) and the model
quantities whose ranks SBC tests. Its template is a simulated study folder of that design, or a copy of
a bundled study (``Case.study``: the flagship's own design); the replicates keep the template's design
and replace its numbers or its statements (``calibration.sbc``).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm

from bayes_stenosis import simulation as sim
from bayes_stenosis.inference import SamplerSettings
from bayes_stenosis.model import ModelInputs, build_model, prepare_inputs, resolve_prior
from bayes_stenosis.resources import resolve_study
from bayes_stenosis.spec import ModelSpec
from bayes_stenosis.study import load_study

PRIOR_SET = "weakly_informative"
TARGET_ACCEPT = 0.95

# Outcomes of the simulated templates (the flagship's ODI and RMDQ; simulation.default_truth documents them)
ODI = sim.OutcomeTruth("ODI", "ODI", 0, 100, 45, 16, 0.6, 10)
RMDQ = sim.OutcomeTruth("RMDQ", "RMDQ", 0, 24, 14, 5, 0.5, 5)


@dataclass(frozen=True)
class Case:
    """One SBC case: a study design (evidence level, outcomes, times, n) and the quantities ranked."""

    name: str
    level: str  # a simulation.LEVELS evidence level for the template study
    quantities: tuple[str, ...]  # model variables ranked (every element of each)
    outcomes: tuple[sim.OutcomeTruth, ...] = (ODI,)
    follow_up: tuple[float, ...] = (8.0,)
    n_per_arm: tuple[int, int] = (20, 20)
    description: str = ""
    # a bundled study whose folder is the template (its design: outcomes, times, n, statements);
    # outcomes, follow_up and n_per_arm are then unused
    study: str | None = None
    # threshold statements' event kinds as data (spec thresholds.kinds_as_data): one compile serves
    # every event pattern of the replicates
    kinds_as_data: bool = False
    # the deliberately wrong likelihood of ``--wrong`` (``calibration.sbc.wrong_data``); None: none applies
    wrong: str | None = "se_as_sd"

    def spec(self, spec: ModelSpec) -> ModelSpec:
        """The spec the case fits: ``spec`` with the case's threshold kinds as data where it asks."""
        if not self.kinds_as_data or spec.thresholds.kinds_as_data:
            return spec
        return spec.model_copy(update={"thresholds": spec.thresholds.model_copy(update={"kinds_as_data": True})})


CASES: dict[str, Case] = {
    c.name: c
    for c in (
        Case(
            "contrast",
            "contrast",
            ("Delta",),
            description="one reported between-arm difference with its SE (Normal likelihood)",
        ),
        Case(
            "arm_summary_change",
            "arm_summary_change",
            ("Delta", "mu_change", "sd_change_reference_arm", "sd_change_new_arm"),
            description="per-arm mean change and change SD (MVN of means, chi-square of reported SDs)",
        ),
        Case(
            "arm_summary_score",
            "arm_summary",
            ("Delta", "mu_change", "rho", "sd_baseline_new_arm", "sd_followup_new_arm"),
            description="per-arm baseline and follow-up score SDs, change SD through an uncertain rho ~ Beta",
        ),
        Case(
            "threshold",
            "threshold",
            ("Delta", "rho", "trial_sd_ratio", "change_sd_ratio"),
            description="one between-arm 'P<0.05' / 'P>0.05' statement (noncentral-t event, data augmentation)",
            wrong=None,
        ),
        Case(
            "threshold_flagship",
            "threshold",
            (
                "Delta",
                "delta",
                "mu_change",
                "tau",
                "sigma_change",
                "rho",
                "trial_sd_ratio",
                "followup_sd_ratio",
                "change_sd_ratio",
                "r_time",
                "r_outcome",
                "threshold_noncentrality",
            ),
            study="farpour2022",
            kinds_as_data=True,
            wrong="direction_flipped",
            description="the flagship's design (farpour2022: VAS, ODI, QBPDS, RMDQ x weeks 4, 8; 39 patients "
            "split equally) with its 24 statements: 8 between-arm and 16 within-arm, one joint event under the "
            "spec's statement_dependence (default), each replicate's event kinds simulated jointly and fitted as "
            "data (one compile)",
        ),
        Case(
            "hierarchical",
            "arm_summary",
            ("Delta", "delta", "mu_change", "tau", "sigma_change", "rho", "r_time", "r_outcome"),
            outcomes=(ODI, RMDQ),
            follow_up=(4.0, 8.0),
            description="default hierarchical spec: 2 outcomes x 2 times, score-form arm summaries, "
            "outcome deviations, tau, error correlations across times and outcomes",
        ),
        Case(
            "ipd",
            "ipd",
            ("Delta", "delta", "ipd_slope", "ipd_baseline_sd", "ipd_cov_sd"),
            outcomes=(ODI, RMDQ),
            follow_up=(4.0, 8.0),
            description="patient-level scores, 2 outcomes x baseline + 2 follow-ups, 20 per arm: baseline MVN, "
            "ANCOVA follow-up with an unstructured covariance over visit x outcome (marginal MVN per patient)",
            wrong=None,
        ),
    )
}


@dataclass(frozen=True)
class Mode:
    """Replicates and sampler settings of an SBC run."""

    replicates: int
    chains: int
    draws: int
    tune: int
    thin_to: int  # L: posterior draws kept per replicate; ranks take L + 1 values
    bins: int

    def settings(self) -> SamplerSettings:
        """The sampler settings of every refit (each replicate gives its own seed)."""
        return SamplerSettings(
            name="nutpie", chains=self.chains, draws=self.draws, tune=self.tune, target_accept=TARGET_ACCEPT, seed=0
        )


MODES = {
    # quick: the test suite; full: the release figures (VALIDATION.md)
    "quick": Mode(replicates=100, chains=2, draws=250, tune=300, thin_to=49, bins=10),
    "full": Mode(replicates=200, chains=2, draws=500, tune=500, thin_to=99, bins=10),
}

# event kind -> how the abstract states it (lower is better: T = (new - ref)/SE < -c favours new)
EVENT_STATEMENT = {
    "inside": (">", ""),
    "below": ("<", "favours_new"),
    "above": ("<", "favours_reference"),
}


def exchangeable_correlation(k: int, r: float) -> np.ndarray:
    """A k x k correlation matrix with every off-diagonal entry ``r``."""
    return (1 - r) * np.eye(k) + r * np.ones((k, k))


def case_template(case: Case, folder: Path, seed: int, events: Sequence[str] | None = None) -> Path:
    """Write the case's study folder: a copy of its bundled study, else simulated (seeded). For a
    simulated threshold study, one between-arm statement per cell with the given event kinds (default:
    every statement "P>0.05"); a bundled study keeps its statements (its replicates' kinds are data)."""
    if case.study is not None:
        if events is not None:
            raise ValueError(f"case {case.name!r}: the template is study {case.study!r} as bundled (kinds as data)")
        shutil.copytree(resolve_study(case.study), folder, dirs_exist_ok=True)
        return folder
    truth = sim.default_truth(
        outcomes=case.outcomes,
        outcome_corr=exchangeable_correlation(len(case.outcomes), 0.75),
        follow_up=case.follow_up,
        change_reference=np.zeros((len(case.follow_up), len(case.outcomes))),
        n_per_arm=case.n_per_arm,
        # ipd.csv refuses scores beyond the scale; the template's patients only supply the baselines
        # the follow-up term conditions on (the replicates' scores come from the model)
        clip=case.level == "ipd",
    )
    patients = sim.simulate_patients(truth, seed=seed)
    sim.write_study(folder, truth, patients, levels=[case.level], seed=seed, overwrite=True)
    if case.level == "threshold":
        path = folder / "thresholds.csv"
        rows = pd.read_csv(path, keep_default_na=False)
        rows = rows[rows["comparison"] == "between"].reset_index(drop=True)
        events = list(events) if events is not None else ["inside"] * len(rows)
        rows["relation"] = [EVENT_STATEMENT[e][0] for e in events]
        rows["direction"] = [EVENT_STATEMENT[e][1] for e in events]
        rows["p_value"] = ""
        rows["note"] = "SBC template: the statement is replaced by a simulated event per replicate"
        rows.to_csv(path, index=False)
    return folder


def model_for(
    folder: str | Path, spec: ModelSpec, prior_set: str, *, prior_sampling: bool = False
) -> tuple[pm.Model, ModelInputs]:
    """The model of a study folder (``prior_sampling``: the form for forward draws, see ``build_model``)."""
    inputs = prepare_inputs(load_study(folder), spec)
    prior = resolve_prior(spec, prior_set, inputs)
    return build_model(inputs, spec, prior, prior_sampling=prior_sampling), inputs


def build_case_model(folder: Path, spec: ModelSpec, prior_sampling: bool = False) -> tuple[pm.Model, ModelInputs]:
    """The model of a case's study folder under the calibration prior set."""
    return model_for(folder, spec, PRIOR_SET, prior_sampling=prior_sampling)
