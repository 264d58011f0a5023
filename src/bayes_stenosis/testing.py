"""Small builders for tests and notebooks: study folders (written by hand or simulated), spec variants, a
study's model and a fit made without sampling (nothing here samples)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayes_stenosis import simulation as sim
from bayes_stenosis.resources import resolve_spec
from bayes_stenosis.spec import ModelSpec, load_spec
from bayes_stenosis.study import EVIDENCE_FILES, SCHEMAS, load_study
from bayes_stenosis.study.writer import dumps_toml, evidence_csv, write_folder

if TYPE_CHECKING:  # only the types; the builders need no sampler
    from arviz import InferenceData
    from pymc import Model

    from bayes_stenosis.model import ModelInputs
    from bayes_stenosis.run import Fit

TEST_SOURCE = "TEST FIXTURE: simulated for tests, not trial data"

# a scale range so wide that no simulated score is clipped: clipping would move the means away from the
# truth, and ipd.csv refuses scores outside the range
_WIDE = {"scale_min": -1000, "scale_max": 1000}
#: Two outcomes for simulated patient-level studies (ODI and RMDQ as in the flagship, never clipped).
IPD_OUTCOMES = (
    sim.OutcomeTruth("ODI", "other", baseline_mean=45, sd=16, rho=0.6, margin=10, **_WIDE),
    sim.OutcomeTruth("RMDQ", "other", baseline_mean=14, sd=5, rho=0.5, margin=5, **_WIDE),
)
#: The correlation between the two outcomes of :data:`IPD_OUTCOMES` at the same visit.
IPD_OUTCOME_CORR = np.array([[1.0, 0.6], [0.6, 1.0]])


def statement_row(
    outcome: str = "ODI", time: float = 4, comparison: str = "between", relation: str = ">", test: str = "two_sample_t"
) -> dict:
    """One ``thresholds.csv`` row of a test study: by default the flagship's kind, ODI week 4 "P>0.05" between
    the arms from a two-sample t test."""
    return {
        "outcome": outcome,
        "time": time,
        "comparison": comparison,
        "relation": relation,
        "alpha": 0.05,
        "test": test,
    }


def write_study(
    folder: Path,
    *,
    outcomes: dict[str, dict] | None = None,
    follow_up: tuple[float, ...] = (4.0,),
    n_per_arm: tuple[int | None, int | None] = (20, 20),
    n_total: int | None = None,
    rows: dict[str, list[dict]] | None = None,
    study_id: str = "test_study",
    arms: tuple[str, str] = ("reference_arm", "new_arm"),
) -> Path:
    """Write a minimal valid study folder; ``rows`` maps a CSV file name to row dicts.

    Each row's ``source`` defaults to :data:`TEST_SOURCE`; columns a row leaves out are empty cells. An
    outcome's ``unit`` defaults to "points"; ``arms`` names the (reference, new) arms.
    """
    outcomes = outcomes or {"ODI": {"instrument": "ODI", "scale_max": 100, "margin": 10, "reference_sd": 16}}
    doc = _study_doc(outcomes, follow_up, n_per_arm, n_total, arms)
    doc["study"]["id"] = study_id
    files = {"study.toml": dumps_toml(doc)}
    level_of = {name: level for level, name in EVIDENCE_FILES.items()}
    for name, records in (rows or {}).items():
        level = level_of[name]
        columns = [c.name for c in SCHEMAS[level]]
        for rec in records:
            unknown = set(rec) - set(columns)
            if unknown:
                raise ValueError(f"{name}: no column(s) {sorted(unknown)} (expected: {', '.join(columns)})")
        frame = pd.DataFrame([{"source": TEST_SOURCE, **rec} for rec in records], columns=columns)
        files[name] = evidence_csv(level, frame)
    return write_folder(folder, files)


def _study_doc(
    outcomes: dict[str, dict],
    follow_up: tuple[float, ...],
    n_per_arm: tuple[int | None, int | None],
    n_total: int | None,
    arm_names: tuple[str, str] = ("reference_arm", "new_arm"),
) -> dict:
    """The ``study.toml`` document of :func:`write_study`: two arms, one baseline, the given outcomes."""
    info: dict = {"id": "test_study", "title": "test study", "citation": TEST_SOURCE, "simulated": True}
    if n_total is not None:
        info |= {"n_randomised_total": n_total, "n_randomised_total_source": TEST_SOURCE}
    arms = {}
    for arm, role, n in ((arm_names[0], "reference", n_per_arm[0]), (arm_names[1], "new", n_per_arm[1])):
        arms[arm] = {"label": arm, "role": role}
        if n is not None:
            arms[arm] |= {"n_randomised": n, "n_source": TEST_SOURCE}
    times = {"baseline": 0, "follow_up": list(follow_up), "source": TEST_SOURCE}
    tables = {}
    for name, o in outcomes.items():
        tables[name] = {
            "label": name,
            "instrument": o.get("instrument", "other"),
            "unit": o.get("unit", "points"),
            "scale_min": 0,
            "scale_max": o.get("scale_max", 100),
            "scale_source": TEST_SOURCE,
            "direction": "lower_is_better",
            "margin": o["margin"],
            "margin_source": TEST_SOURCE,
        }
        if o.get("reference_sd") is not None:
            tables[name] |= {"reference_sd": o["reference_sd"], "reference_sd_source": TEST_SOURCE}
    return {"schema_version": 1, "study": info, "arms": arms, "times": times, "outcomes": tables}


def write_mixed_evidence_study(folder: Path) -> Path:
    """Write a study with both kinds of aggregate evidence, at weeks 4 and 8: ODI with reported contrasts
    (-2 and 1, SE 3) and VAS with "P>0.05" between-arm statements only, so that a fit draws both kinds of
    predictive check."""
    rows_contrast = [
        {"outcome": "ODI", "time": t, "measure": "change", "direction": "new_minus_reference", "estimate": e, "se": 3}
        for t, e in ((4, -2), (8, 1))
    ]
    rows_threshold = [
        {
            "outcome": "VAS",
            "time": t,
            "comparison": "between",
            "relation": ">",
            "alpha": 0.05,
            "test": "two_sample_t",
        }
        for t in (4, 8)
    ]
    return write_study(
        folder,
        outcomes={
            "ODI": {"instrument": "ODI", "scale_max": 100, "margin": 10, "reference_sd": 16},
            "VAS": {"instrument": "VAS", "scale_max": 100, "margin": 15, "reference_sd": 20},
        },
        follow_up=(4.0, 8.0),
        rows={"contrasts.csv": rows_contrast, "thresholds.csv": rows_threshold},
    )


def ipd_truth(n: int = 20, dropout: float = 0.0, **kw) -> sim.TrialTruth:
    """A truth over :data:`IPD_OUTCOMES` with ``n`` patients per arm; ``kw`` goes to
    :func:`~bayes_stenosis.simulation.default_truth`."""
    return sim.default_truth(
        outcomes=IPD_OUTCOMES, outcome_corr=IPD_OUTCOME_CORR, n_per_arm=(n, n), dropout=dropout, **kw
    )


def write_simulated_study(root: Path, level: str, seed: int, delta: float = 0.0, n: int = 20) -> Path:
    """Simulate a trial shaped like the flagship (:func:`~bayes_stenosis.simulation.default_truth`: ``n``
    patients per arm, true difference ``delta``) with ``seed`` and write its evidence ``level`` to
    ``root/<level>_<seed>``."""
    truth = sim.default_truth(n_per_arm=(n, n), delta=delta)
    return sim.write_study(
        root / f"{level}_{seed}", truth, sim.simulate_patients(truth, seed=seed), levels=[level], seed=seed
    )


def write_ipd_study(folder: Path, truth: sim.TrialTruth, seed: int) -> Path:
    """Simulate the patients of ``truth`` (``seed``) and write them as a patient-level study folder
    (``ipd.csv``; an existing folder is replaced)."""
    patients = sim.simulate_patients(truth, seed=seed)
    return sim.write_study(folder, truth, patients, levels=["ipd"], seed=seed, overwrite=True)


def spec_variant(**changes) -> ModelSpec:
    """The default spec with nested fields replaced, e.g. ``correlation={"fixed_baseline_followup": .5}``."""
    spec, _ = load_spec("default")
    update = {}
    for section, values in changes.items():
        current = getattr(spec, section)
        # re-validate so nested values (e.g. a Beta prior given as a dict) become typed models
        update[section] = (
            type(current).model_validate(current.model_dump() | values) if isinstance(values, dict) else values
        )
    return spec.model_copy(update=update)


def write_spec_with_grid(
    folder: Path, prior_sets: list, correlations: list, extra: str = "", pooling: tuple[str, ...] = ("spec",)
) -> str:
    """Write ``folder/spec.toml``, a copy of the default spec with another ``[sensitivity]`` grid (the grid
    is data, not code): its prior sets, correlations and outcome pooling, and ``extra`` lines at the top
    of the table. Returns the path as a string, as ``--model`` takes it."""
    text = resolve_spec("default").read_text()
    text = re.sub(r"(?m)^outcome_pooling = \[.*\]$", f"outcome_pooling = {json.dumps(list(pooling))}", text)
    text = re.sub(r"(?m)^prior_sets = \[.*\]$", f"prior_sets = {json.dumps(prior_sets)}", text)
    text = re.sub(r"(?m)^correlations = \[.*\]$", f"correlations = {json.dumps(correlations)}", text)
    text = text.replace("[sensitivity]\n", "[sensitivity]\n" + extra, 1)
    path = folder / "spec.toml"
    path.write_text(text)
    return str(path)


def wide_scores(patients: pd.DataFrame, arm: str, truth: sim.TrialTruth) -> np.ndarray:
    """One arm's simulated scores as a ``(patient, time, outcome)`` array, built independently of the
    simulation's own reshaping so that tests can check it."""
    sub = patients[patients.arm == arm].sort_values(["patient", "time", "outcome"])
    cube = sub.set_index(["patient", "time", "outcome"])["value"].unstack(["time", "outcome"])
    cube = cube[[(t, o) for t in truth.times for o in truth.outcome_names]]
    return cube.to_numpy().reshape(len(cube), len(truth.times), len(truth.outcomes))


def study_model(
    folder: Path, spec: ModelSpec | None = None, prior_set: str = "weakly_informative", prior_sampling: bool = False
) -> tuple[Model, ModelInputs]:
    """The model of a study folder under ``spec`` (the default spec if none) and ``prior_set``, and its
    inputs; ``prior_sampling`` builds the form used for forward draws (see ``model.build_model``)."""
    # the model layer pulls in PyMC; imported here so that the study builders above stay light
    from bayes_stenosis.model import build_model, prepare_inputs, resolve_prior

    spec = spec or load_spec()[0]
    inputs = prepare_inputs(load_study(folder), spec)
    prior = resolve_prior(spec, prior_set, inputs)
    return build_model(inputs, spec, prior, prior_sampling=prior_sampling), inputs


def synthetic_fit(
    study: Path,
    *,
    prior_set: str = "vague",
    seed: int = 1,
    chains: int = 2,
    draws: int = 300,
    delta_mean: float = 0.0,
    delta_sd: float = 0.2,
) -> Fit:
    """A :class:`~bayes_stenosis.run.Fit` of ``study`` made without sampling, for tests of run folders and
    of the commands that read them (``write_run`` writes it like any fit, in about a second).

    The "posterior" is normal noise, delta ~ N(delta_mean, delta_sd) standardized units per cell (0 and 0.2
    by default), and the "prior" N(0, 1): NOT a posterior of the study. The decision table, diagnostics and
    verdict are computed from these draws by the package's own functions.
    """
    # the run layer pulls in PyMC; imported here so that the study builders above stay light
    from bayes_stenosis.diagnostics import decision_probability_table, parameter_table, sampler_table, verdict
    from bayes_stenosis.inference import SamplerSettings
    from bayes_stenosis.model import prepare_inputs, resolve_prior
    from bayes_stenosis.run import Fit, decide, load_model_spec

    loaded = load_study(study)
    spec, spec_path, spec_sha = load_model_spec("default")
    settings = SamplerSettings.from_spec(spec.sampler, seed=seed, chains=chains, draws=draws, tune=draws)
    inputs = prepare_inputs(loaded, spec)
    idata = _noise_idata(inputs, seed=seed, chains=chains, draws=draws, mean=delta_mean, sd=delta_sd)
    prior_delta = idata.prior["delta_natural"]
    resolved = resolve_prior(spec, prior_set, inputs)
    provenance = {"seed": seed, "spec_name": spec.name, "spec_sha256": spec_sha, "prior_set": prior_set}
    results = decide(
        idata, loaded, inputs, spec, prior_delta, prior=resolved, prior_set=prior_set, provenance=provenance
    )
    params, samp = parameter_table(idata), sampler_table(idata)
    threshold = spec.decision.threshold
    decision_diag = decision_probability_table(idata.posterior["delta_natural"], results.decisions, threshold)
    return Fit(
        study=loaded,
        spec=spec,
        spec_path=spec_path,
        spec_sha256=spec_sha,
        prior_set=prior_set,
        prior=resolved,
        inputs=inputs,
        settings=settings,
        margin_overrides={},
        idata=idata,
        prior_delta_natural=prior_delta,
        parameters=params,
        sampler_stats=samp,
        decision_diagnostics=decision_diag,
        results=results,
        verdict=verdict(params, samp, spec.diagnostics, decision_diag),
        timings={"fit_total": 0.0},
    )


def _noise_idata(
    inputs: ModelInputs, *, seed: int, chains: int, draws: int, mean: float = 0.0, sd: float = 0.2
) -> InferenceData:
    """The InferenceData of :func:`synthetic_fit`: ``delta`` (and ``delta_natural``) per cell, posterior
    N(mean, sd) and prior N(0, 1) in standardized units, with sample stats of a fit without divergences."""
    import arviz as az

    rng = np.random.default_rng(seed)
    cells = (len(inputs.coords["time"]), len(inputs.coords["outcome"]))
    delta = rng.normal(mean, sd, (chains, draws, *cells))
    prior = rng.normal(0.0, 1.0, (1, 4 * draws, *cells))
    dims = {"delta": ["time", "outcome"], "delta_natural": ["time", "outcome"]}
    coords = {"time": list(inputs.coords["time"]), "outcome": list(inputs.coords["outcome"])}
    return az.from_dict(
        posterior={"delta": delta, "delta_natural": delta * inputs.scale},
        prior={"delta": prior, "delta_natural": prior * inputs.scale},
        sample_stats={
            "diverging": np.zeros((chains, draws), dtype=bool),
            "energy": rng.normal(size=(chains, draws)),
            "maxdepth_reached": np.zeros((chains, draws), dtype=bool),
        },
        coords=coords,
        dims=dims,
    )
