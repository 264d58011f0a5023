"""One contrast across studies: the checks that make a synthesis meaningful, then the engine.

Refused, with one line naming the runs: the same study twice; different comparisons (new and reference
arms) unless ``arm_map`` says two arm names are the same treatment; opposite outcome directions; the
natural scale for studies whose units or standardising SDs differ; studies whose margins differ on the
synthesis scale without an explicit ``margin``. Different units are combined only on the standardized
scale (delta / the study's standardising SD), and the result says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_stenosis.analyses.synthesis.engine import (
    GridPosterior,
    posterior_grid,
    prior_probabilities,
    summarize_grid,
)
from bayes_stenosis.analyses.synthesis.inputs import QualityLimits, StudyInput, read_study
from bayes_stenosis.analyses.synthesis.priors import (
    EffectPrior,
    HeterogeneityPrior,
    effect_prior,
    heterogeneity_prior,
)
from bayes_stenosis.errors import SynthesisError
from bayes_stenosis.run import read_manifest

__all__ = ["Synthesis", "synthesize", "synthesize_studies"]

SCALES = ("auto", "standardized", "natural")
#: The columns of a synthesis table's study, pooled, new-study and tau rows (after their row label).
ESTIMATE_COLUMNS = (
    "study",
    "time",
    "outcome",
    "likelihood",
    "likelihood_mean",
    "likelihood_sd",
    "mean",
    "sd",
    "median",
    "interval_low",
    "interval_high",
    "prob_equivalence",
)
LIKELIHOOD_MODES = ("auto", "normal", "reweighted")


@dataclass
class Synthesis:
    """A synthesis in memory: its studies, the scale and margin, the priors and the numbers."""

    studies: list[StudyInput]
    scale: str
    unit: str
    margin: float
    margin_source: str
    mu_prior: EffectPrior
    tau_prior: HeterogeneityPrior
    level: float
    numbers: dict
    prior_probability: dict
    grid: GridPosterior
    notes: list[str] = field(default_factory=list)
    likelihood_choice: dict = field(default_factory=dict)

    @property
    def comparison(self) -> str:
        return f"{self.studies[0].new_arm} minus {self.studies[0].reference_arm}"

    def table(self) -> pd.DataFrame:
        """``synthesis.csv``: one row per study (its likelihood, and its shrunken effect in mean ... the
        probability columns), then the pooled effect, a new study's effect and tau; scale, unit, margin."""
        rows = []
        for s, shrunk in zip(self.studies, self.numbers["studies"], strict=True):
            lik = s.likelihood(self.scale_key)
            rows.append(
                {
                    "row": "study",
                    "study": s.study,
                    "time": s.time,
                    "outcome": s.outcome,
                    "likelihood": s.method,
                    "likelihood_mean": lik.mean,
                    "likelihood_sd": lik.sd,
                    **shrunk,
                }
            )
        rows += [{"row": key, **self.numbers[key]} for key in ("pooled", "new_study", "tau")]
        frame = pd.DataFrame(rows)
        frame = frame.reindex(columns=["row", *ESTIMATE_COLUMNS])
        frame["prior_prob_equivalence"] = frame["row"].map(self.prior_probability)
        frame["scale"], frame["unit"], frame["margin"] = self.scale, self.unit, self.margin
        return frame

    @property
    def scale_key(self) -> str:
        return "standardized" if self.scale.startswith("standardized") else "natural"

    def record(self) -> dict:
        """``synthesis.json``: everything above, with the priors, margin and inputs stated."""
        return {
            "what": "Bayesian random-effects synthesis of one contrast across studies, from each run's LIKELIHOOD",
            "comparison": self.comparison + ": change from baseline",
            "scale": self.scale,
            "unit": self.unit,
            "margin": {"value": self.margin, "source": self.margin_source},
            "interval_level": self.level,
            "priors": {"mu": self.mu_prior.record(), "tau": self.tau_prior.record(), "units": "SMD"},
            "prior_prob_equivalence": self.prior_probability,
            "likelihood_choice": self.likelihood_choice,
            **{k: self.numbers[k] for k in ("pooled", "tau", "new_study", "grid")},
            "studies": [
                _study_record(s, n, self.scale_key) for s, n in zip(self.studies, self.numbers["studies"], strict=True)
            ],
            "notes": self.notes,
        }


def _study_record(s: StudyInput, shrunk: dict, scale: str) -> dict:
    lik = s.likelihood(scale)
    return {
        "study": s.study,
        "citation": s.citation,
        "simulated": s.simulated,
        "run": str(s.run),
        "cell": {"time": s.time, "outcome": s.outcome, "unit": s.unit, "direction": s.direction},
        "standardising_sd": {"value": s.standardising_sd, "source": s.standardising_sd_source},
        "margin_natural": {"value": s.margin_natural, "source": s.margin_source},
        "likelihood": {
            "method": s.method,
            "mean": lik.mean,
            "sd": lik.sd,
            "kernels": len(lik.centers),
            "effective_draws": s.effective_draws,
            "quality": s.quality,
            "notes": s.notes,
        },
        "shrunken": shrunk,
        "hashes": s.hashes,
    }


def synthesize(
    runs: Sequence[str | Path],
    outcome: str | None = None,
    time: float | None = None,
    *,
    cells: Mapping[str, tuple[str, float]] | None = None,
    scale: str = "auto",
    likelihood: str = "auto",
    tau_prior: str | HeterogeneityPrior = "bartos2021_back_and_neck",
    mu_prior: str | EffectPrior = "weakly_informative",
    margin: float | None = None,
    arm_map: Mapping[str, str] | None = None,
    limits: QualityLimits | None = None,
    level: float = 0.95,
) -> Synthesis:
    """Synthesise ``delta[time, outcome]`` across saved runs (nothing is written).

    ``cells`` maps a study id to its own (outcome, time) where they differ from ``outcome`` / ``time``
    (the result then lists every study's cell). See :func:`synthesize_studies` for the rest.

    Raises
    ------
    SynthesisError
        One line naming the run(s) (module docstring and :func:`~.inputs.read_study`).
    """
    if likelihood not in LIKELIHOOD_MODES:
        raise SynthesisError(None, f"--likelihood must be one of {', '.join(LIKELIHOOD_MODES)} (got {likelihood!r})")
    if not runs:
        raise SynthesisError(None, "no run folders given")
    tau_prior, mu_prior = heterogeneity_prior(tau_prior), effect_prior(mu_prior)  # bad options: before any work
    cells = dict(cells or {})
    studies = []
    for run in runs:
        sid = read_manifest(Path(run)).get("study", {}).get("id", "")  # none: not a study's run (refused below)
        o, t = cells.pop(sid, (outcome, time))
        if o is None or t is None:
            raise SynthesisError(Path(run), f"no outcome / time for study {sid!r}: give --outcome and --time or --cell")
        studies.append(read_study(run, o, float(t), mode=likelihood, limits=limits))
    if cells:
        raise SynthesisError(None, f"--cell names studies that are not among the runs: {', '.join(sorted(cells))}")
    result = synthesize_studies(
        studies, scale=scale, tau_prior=tau_prior, mu_prior=mu_prior, margin=margin, arm_map=arm_map, level=level
    )
    result.likelihood_choice = {"mode": likelihood, **(limits or QualityLimits()).record()}
    return result


def synthesize_studies(
    studies: list[StudyInput],
    *,
    scale: str = "auto",
    tau_prior: str | HeterogeneityPrior = "bartos2021_back_and_neck",
    mu_prior: str | EffectPrior = "weakly_informative",
    margin: float | None = None,
    arm_map: Mapping[str, str] | None = None,
    level: float = 0.95,
) -> Synthesis:
    """The synthesis of studies already read (checks, then the grid engine)."""
    if scale not in SCALES:
        raise SynthesisError(None, f"--scale must be one of {', '.join(SCALES)} (got {scale!r})")
    check_distinct(studies)
    check_comparison(studies, arm_map or {})
    scale_key, unit, notes = choose_scale(studies, scale)
    value, source = choose_margin(studies, scale_key, margin)
    mu_p, tau_p = effect_prior(mu_prior), heterogeneity_prior(tau_prior)
    sd = studies[0].standardising_sd
    mu_used, tau_used = (mu_p, tau_p) if scale_key == "standardized" else (mu_p.to_natural(sd), tau_p.to_natural(sd))
    likelihoods = [s.likelihood(scale_key) for s in studies]
    grid = posterior_grid(likelihoods, mu_used, tau_used)
    numbers = summarize_grid(grid, likelihoods, value, level)
    notes += _cell_notes(studies)
    label = "standardized (delta / each study's standardising SD)" if scale_key == "standardized" else "natural"
    return Synthesis(
        studies=studies,
        scale=label,
        unit=unit,
        margin=value,
        margin_source=source,
        mu_prior=mu_p,
        tau_prior=tau_p,
        level=level,
        numbers=numbers,
        grid=grid,
        prior_probability={f"{k}": v for k, v in prior_probabilities(mu_used, tau_used, value).items()},
        notes=notes,
    )


def check_distinct(studies: list[StudyInput]) -> None:
    ids = [s.study for s in studies]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise SynthesisError(None, f"study {', '.join(twice)} given more than once: its data would count twice")


def check_comparison(studies: list[StudyInput], arm_map: Mapping[str, str]) -> None:
    """The same new and reference arms (after ``arm_map``) and the same outcome direction everywhere."""

    def arms(s: StudyInput) -> tuple[str, str]:
        return arm_map.get(s.new_arm, s.new_arm), arm_map.get(s.reference_arm, s.reference_arm)

    directions = {s.direction for s in studies}
    if len(directions) > 1:
        listed = "; ".join(f"{s.study} {s.outcome}: {s.direction}" for s in studies)
        raise SynthesisError(None, f"outcome directions differ ({listed}): a synthesis does not flip signs")
    first = arms(studies[0])
    for s in studies[1:]:
        if arms(s) == first:
            continue
        listed = "; ".join(f"{x.study}: {x.new_arm} vs {x.reference_arm}" for x in studies)
        hint = " (new and reference are swapped: a synthesis does not flip signs)" if arms(s) == first[::-1] else ""
        raise SynthesisError(
            s.run,
            f"different comparisons ({listed}){hint}; if arms with different names are the same treatment, "
            "map them with --arm-map NAME=COMMON_NAME",
        )


def choose_scale(studies: list[StudyInput], scale: str) -> tuple[str, str, list[str]]:
    units = {s.unit for s in studies}
    sds = {s.standardising_sd for s in studies}
    same = len(units) == 1 and len(sds) == 1
    if scale == "natural" and not same:
        listed = "; ".join(f"{s.study}: {s.outcome} in {s.unit}, SD {s.standardising_sd:g}" for s in studies)
        raise SynthesisError(
            None, f"--scale natural needs one unit and one standardising SD ({listed}); use --scale standardized"
        )
    if scale == "natural" or (scale == "auto" and same):
        return "natural", studies[0].unit, []
    notes = [
        "combined on the STANDARDIZED scale: each study's delta divided by its own standardising SD ("
        + "; ".join(f"{s.study} {s.outcome}: {s.standardising_sd:g} {s.unit}" for s in studies)
        + "); the pooled effect is in those SD units, not in any study's natural unit"
    ]
    return "standardized", "SD units", notes


def choose_margin(studies: list[StudyInput], scale: str, margin: float | None) -> tuple[float, str]:
    per = [s.margin_std if scale == "standardized" else s.margin_natural for s in studies]
    if margin is not None:
        if not margin > 0:
            raise SynthesisError(None, f"--margin must be positive (got {margin:g})")
        return float(margin), "given on the command line (--margin)"
    if not np.allclose(per, per[0], rtol=1e-9, atol=0):
        listed = ", ".join(f"{s.study} {m:.4g}" for s, m in zip(studies, per, strict=True))
        raise SynthesisError(None, f"the studies' margins differ on the {scale} scale ({listed}): give --margin")
    sources = "; ".join(f"{s.study} {s.outcome}: {s.margin_natural:g} {s.unit} ({s.margin_source})" for s in studies)
    return float(per[0]), f"the studies' own margins, equal on the {scale} scale: {sources}"


def _cell_notes(studies: list[StudyInput]) -> list[str]:
    notes = []
    if len({(s.outcome, s.time) for s in studies}) > 1:
        cells = "; ".join(f"{s.study}: {s.outcome} at {s.time:g}" for s in studies)
        notes.append(f"the studies' cells differ (outcome or time: {cells}); the synthesis treats them as one contrast")
    if any(s.simulated for s in studies):
        notes.append("SIMULATED data among the inputs: " + ", ".join(s.study for s in studies if s.simulated))
    return notes
