"""The multivariate synthesis across saved runs (``synthesize --cells``): several cells at once, each study
entering through its JOINT normal likelihood over the cells it has (the engine: :mod:`.multivariate`).

Checks, as in the one-cell synthesis (:mod:`.combine`): the same study twice, different comparisons, and
within each cell opposite outcome directions are refused; the natural scale needs one unit and one
standardising SD across every cell and study (otherwise the standardized scale, and the output says so);
each cell's margin is its studies' own when they agree, else ``margin`` (applied to every cell). Refused
also: a cell that no run has with evidence, a run with none of the cells, reweighted draws (they are a
one-cell likelihood; the joint one is the normal division), and under ``likelihood="auto"`` a cell whose
normal approximation the run's own figures call poor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_stenosis.analyses.synthesis.combine import (
    ESTIMATE_COLUMNS,
    check_comparison,
    check_distinct,
    choose_margin,
    choose_scale,
)
from bayes_stenosis.analyses.synthesis.engine import prior_probabilities
from bayes_stenosis.analyses.synthesis.inputs import QualityLimits, StudyInput, read_study
from bayes_stenosis.analyses.synthesis.multivariate import (
    CorrelationPrior,
    MvLikelihood,
    correlation_prior,
    mv_posterior,
    mv_summary,
)
from bayes_stenosis.analyses.synthesis.priors import (
    EffectPrior,
    HeterogeneityPrior,
    effect_prior,
    heterogeneity_prior,
)
from bayes_stenosis.errors import SynthesisError
from bayes_stenosis.run import load_run

__all__ = ["MultivariateSynthesis", "synthesize_multivariate"]


def cell_label(cell: tuple[str, float]) -> str:
    return f"{cell[0]}@{cell[1]:g}"


@dataclass
class MultivariateSynthesis:
    """A multivariate synthesis in memory: per run its cells' inputs and joint likelihood, the cells, scale,
    margins, priors and the numbers (with the draws behind the joint probabilities)."""

    inputs: list[list[StudyInput]]
    likelihoods: list[MvLikelihood]
    cells: list[tuple[str, float]]
    scale: str
    unit: str
    margins: np.ndarray
    margin_sources: list[str]
    mu_prior: EffectPrior
    tau_prior: HeterogeneityPrior
    r_prior: CorrelationPrior
    level: float
    numbers: dict
    prior_probability: list[dict]
    draws: dict
    weights: np.ndarray
    notes: list[str] = field(default_factory=list)
    likelihood_choice: dict = field(default_factory=dict)

    @property
    def comparison(self) -> str:
        first = self.inputs[0][0]
        return f"{first.new_arm} minus {first.reference_arm}"

    @property
    def scale_key(self) -> str:
        return "standardized" if self.scale.startswith("standardized") else "natural"

    @property
    def labels(self) -> list[str]:
        return [cell_label(c) for c in self.cells]

    def table(self) -> pd.DataFrame:
        """``synthesis.csv``: per study and cell its likelihood (the marginal of its joint one); per cell the
        pooled and new-study effects; the joint P(all cells inside) of both; tau and r."""
        rows = []
        for group, lik in zip(self.inputs, self.likelihoods, strict=True):
            for s, j, pos in zip(group, lik.cells, range(len(lik.cells)), strict=True):
                sd = float(np.sqrt(lik.cov[pos, pos]))
                rows.append(
                    {
                        "row": "study",
                        "cell": self.labels[j],
                        "study": s.study,
                        "time": s.time,
                        "outcome": s.outcome,
                        "likelihood": "normal (joint)",
                        "likelihood_mean": float(lik.mean[pos]),
                        "likelihood_sd": sd,
                    }
                )
        for j, numbers in enumerate(self.numbers["cells"]):
            for key in ("pooled", "new_study"):
                rows.append(
                    {
                        "row": key,
                        "cell": self.labels[j],
                        "time": self.cells[j][1],
                        "outcome": self.cells[j][0],
                        **numbers[key],
                        "margin": self.margins[j],
                        "prior_prob_equivalence": self.prior_probability[j][key],
                    }
                )
        joint = self.numbers["joint_prob_equivalence"]
        for key in ("pooled", "new_study"):
            rows.append(
                {
                    "row": f"joint_{key}",
                    "cell": "all",
                    "prob_equivalence": joint[key]["prob"],
                    "mcse_prob_equivalence": joint[key]["mcse"],
                }
            )
        rows += [{"row": key, "cell": "all", **self.numbers[key]} for key in ("tau", "r") if self.numbers[key]]
        columns = [
            "row",
            "cell",
            *ESTIMATE_COLUMNS,
            "mcse_prob_equivalence",
            "prior_prob_equivalence",
            "margin",
        ]
        frame = pd.DataFrame(rows).reindex(columns=columns)
        frame["scale"], frame["unit"] = self.scale, self.unit
        return frame

    def record(self) -> dict:
        """``synthesis.json``: the numbers with the priors (r's included), margins, cells and inputs."""
        k = len(self.cells)
        return {
            "what": "Bayesian MULTIVARIATE random-effects synthesis of several cells across studies, from each "
            "run's joint LIKELIHOOD",
            "model": "theta_i ~ MVN(mu, tau^2((1 - r) I + r J)); y_i ~ MVN(theta_i over its cells, S_i)",
            "comparison": self.comparison + ": change from baseline",
            "cells": self.labels,
            "scale": self.scale,
            "unit": self.unit,
            "margins": [
                {"cell": lab, "value": float(m), "source": src}
                for lab, m, src in zip(self.labels, self.margins, self.margin_sources, strict=True)
            ],
            "interval_level": self.level,
            "priors": {
                "mu": self.mu_prior.record() | {"applies": "to each cell's mu independently"},
                "tau": self.tau_prior.record(),
                "r": self.r_prior.record(k),
                "units": "SMD",
            },
            "likelihood_choice": self.likelihood_choice,
            "pooled_by_cell": {
                lab: {**c, "prior_prob_equivalence": p}
                for lab, c, p in zip(self.labels, self.numbers["cells"], self.prior_probability, strict=True)
            },
            **{key: self.numbers[key] for key in ("joint_prob_equivalence", "tau", "r", "engine")},
            "studies": [
                _study_record(group, lik, self.labels) for group, lik in zip(self.inputs, self.likelihoods, strict=True)
            ],
            "notes": self.notes,
        }


def _study_record(group: list[StudyInput], lik: MvLikelihood, labels: list[str]) -> dict:
    first = group[0]
    return {
        "study": first.study,
        "citation": first.citation,
        "simulated": first.simulated,
        "run": str(first.run),
        "cells": [labels[j] for j in lik.cells],
        "likelihood": {"method": "normal (joint)", "mean": lik.mean.tolist(), "covariance": lik.cov.tolist()},
        "per_cell": [
            {
                "cell": labels[j],
                "unit": s.unit,
                "direction": s.direction,
                "standardising_sd": {"value": s.standardising_sd, "source": s.standardising_sd_source},
                "margin_natural": {"value": s.margin_natural, "source": s.margin_source},
                "quality": s.quality,
                "notes": s.notes,
            }
            for s, j in zip(group, lik.cells, strict=True)
        ],
        "hashes": first.hashes,
    }


def read_run_cells(
    path: str | Path, cells: Sequence[tuple[str, float]], mode: str, limits: QualityLimits
) -> tuple[list[StudyInput], MvLikelihood] | None:
    """One run's inputs for the cells it has with evidence, and its joint normal likelihood over them
    (standardized); None when it has none of them."""
    run = load_run(path)
    approx = run.read_json("approximations.json") if run.manifest.get("kind") != "synthesis" else None
    if approx is None:  # read_study refuses a synthesis folder with the reason
        read_study(path, *cells[0])
    block = approx["likelihood"]
    present, inputs = [], []
    for j, (outcome, time) in enumerate(cells):
        names = [
            n
            for n, c in zip(approx["names"], approx["cells"], strict=True)
            if c["outcome"] == outcome and np.isclose(c["time"], time)
        ]
        if not names or names[0] not in block["names"]:
            continue
        study = read_study(path, outcome, time, mode="normal", limits=limits)
        if mode == "auto" and study.quality["normal_approximation_poor"]:
            raise SynthesisError(
                run.path,
                f"{outcome} at {time:g}: the run's figures call its normal approximation poor (KS "
                f"{study.quality['ks_distance']}, quantile error {study.quality['max_quantile_error_sd']}); the "
                "multivariate synthesis uses the joint normal likelihood: synthesise that cell alone "
                "(reweighted draws) or accept the normal with --likelihood normal",
            )
        present.append((j, block["names"].index(names[0])))
        inputs.append(study)
    if not present:
        return None
    cols = np.array([p[1] for p in present])
    mean = np.asarray(block["mean_std"], float)[cols]
    cov = np.asarray(block["covariance_std"], float)[np.ix_(cols, cols)]
    return inputs, MvLikelihood(np.array([p[0] for p in present]), mean, cov)


def synthesize_multivariate(
    runs: Sequence[str | Path],
    cells: Sequence[tuple[str, float]],
    *,
    scale: str = "auto",
    likelihood: str = "auto",
    tau_prior: str | HeterogeneityPrior = "bartos2021_back_and_neck",
    mu_prior: str | EffectPrior = "weakly_informative",
    between_correlation: str | CorrelationPrior = "uniform",
    margin: float | None = None,
    arm_map: Mapping[str, str] | None = None,
    limits: QualityLimits | None = None,
    level: float = 0.95,
    seed: int = 20261207,
) -> MultivariateSynthesis:
    """Synthesise ``cells`` (``(outcome, time)`` pairs) jointly across saved runs (nothing is written).

    Raises
    ------
    SynthesisError
        One line naming the run(s) or the cell (module docstring).
    """
    if likelihood not in ("auto", "normal"):
        raise SynthesisError(
            None,
            "--cells: the multivariate synthesis uses each run's joint normal likelihood (--likelihood auto "
            f"or normal; got {likelihood!r}); reweighted draws are for one cell",
        )
    cells = [(str(o), float(t)) for o, t in cells]
    if not runs or not cells:
        raise SynthesisError(None, "no run folders or no cells given")
    if len(set(cells)) < len(cells):
        raise SynthesisError(None, f"--cells lists a cell twice ({', '.join(map(cell_label, cells))})")
    tau_p, mu_p, r_p = heterogeneity_prior(tau_prior), effect_prior(mu_prior), correlation_prior(between_correlation)
    limits = limits or QualityLimits()
    inputs, likelihoods, by_cell = read_and_check(runs, cells, likelihood, limits, arm_map or {})
    flat = [s for g in inputs for s in g]
    scale_key, unit, notes = choose_scale(flat, scale)
    chosen = [choose_margin(group, scale_key, margin) for group in by_cell]
    margins = np.array([m for m, _ in chosen])
    sd = flat[0].standardising_sd
    if scale_key == "natural":
        likelihoods = [MvLikelihood(x.cells, x.mean * sd, x.cov * sd**2) for x in likelihoods]
        mu_used, tau_used = mu_p.to_natural(sd), tau_p.to_natural(sd)
    else:
        mu_used, tau_used = mu_p, tau_p
    post = mv_posterior(likelihoods, len(cells), mu_used, tau_used, r_p)
    numbers, draws, weights = mv_summary(post, mu_used, margins, seed=seed, level=level)
    if any(s.simulated for s in flat):
        notes.append("SIMULATED data among the inputs: " + ", ".join(sorted({s.study for s in flat if s.simulated})))
    notes += [
        f"{g[0].study} lacks {', '.join(cell_label(c) for j, c in enumerate(cells) if j not in lik.cells)}: it "
        "contributes the marginal likelihood of the cells it has"
        for g, lik in zip(inputs, likelihoods, strict=True)
        if len(lik.cells) < len(cells)
    ]
    label = "standardized (delta / each study's standardising SD)" if scale_key == "standardized" else "natural"
    return MultivariateSynthesis(
        inputs=inputs,
        likelihoods=likelihoods,
        cells=cells,
        scale=label,
        unit=unit,
        margins=margins,
        margin_sources=[s for _, s in chosen],
        mu_prior=mu_p,
        tau_prior=tau_p,
        r_prior=r_p,
        level=level,
        numbers=numbers,
        prior_probability=[prior_probabilities(mu_used, tau_used, float(m)) for m in margins],
        draws=draws,
        weights=weights,
        notes=notes,
        likelihood_choice={"mode": likelihood, "method": "joint normal likelihood", **limits.record()},
    )


def read_and_check(
    runs: Sequence[str | Path],
    cells: list[tuple[str, float]],
    likelihood: str,
    limits: QualityLimits,
    arm_map: Mapping[str, str],
) -> tuple[list[list[StudyInput]], list[MvLikelihood], list[list[StudyInput]]]:
    """Every run's inputs and joint likelihood, and the inputs grouped by cell, after the refusals (module
    docstring)."""
    inputs, likelihoods = [], []
    for run in runs:
        got = read_run_cells(run, cells, likelihood, limits)
        if got is None:
            raise SynthesisError(Path(run), f"the run has none of the cells {', '.join(map(cell_label, cells))}")
        inputs.append(got[0])
        likelihoods.append(got[1])
    by_cell = [[s for g in inputs for s in g if s.outcome == o and np.isclose(s.time, t)] for o, t in cells]
    missing = [cell_label(c) for c, group in zip(cells, by_cell, strict=True) if not group]
    if missing:
        raise SynthesisError(None, f"no run has evidence for {', '.join(missing)}: nothing to synthesise there")
    check_distinct([g[0] for g in inputs])
    check_comparison([dataclasses.replace(g[0], direction="") for g in inputs], arm_map)
    for group in by_cell:
        check_comparison(group, arm_map)
    return inputs, likelihoods, by_cell
