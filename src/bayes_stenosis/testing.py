"""Small in-memory builders for tests and notebooks: study folders and spec variants (no sampling here)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayes_stenosis.spec import ModelSpec, load_spec
from bayes_stenosis.study import EVIDENCE_FILES, SCHEMAS
from bayes_stenosis.study.writer import dumps_toml, evidence_csv, write_folder

if TYPE_CHECKING:  # only the types; the builders need no simulation and no sampler
    from arviz import InferenceData

    from bayes_stenosis.model import ModelInputs
    from bayes_stenosis.run import Fit
    from bayes_stenosis.simulation import TrialTruth

TEST_SOURCE = "TEST FIXTURE: simulated for tests, not trial data"


def write_study(
    folder: Path,
    *,
    outcomes: dict[str, dict] | None = None,
    follow_up: tuple[float, ...] = (4.0,),
    n_per_arm: tuple[int | None, int | None] = (20, 20),
    n_total: int | None = None,
    rows: dict[str, list[dict]] | None = None,
) -> Path:
    """Write a minimal valid study folder; ``rows`` maps a CSV file name to row dicts.

    Each row's ``source`` defaults to :data:`TEST_SOURCE`; columns a row leaves out are empty cells.
    """
    outcomes = outcomes or {"ODI": {"instrument": "ODI", "scale_max": 100, "margin": 10, "reference_sd": 16}}
    files = {"study.toml": dumps_toml(_study_doc(outcomes, follow_up, n_per_arm, n_total))}
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
) -> dict:
    """The ``study.toml`` document of :func:`write_study`: two arms, one baseline, the given outcomes."""
    info: dict = {"id": "test_study", "title": "test study", "citation": TEST_SOURCE, "simulated": True}
    if n_total is not None:
        info |= {"n_randomised_total": n_total, "n_randomised_total_source": TEST_SOURCE}
    arms = {}
    for arm, role, n in (("reference_arm", "reference", n_per_arm[0]), ("new_arm", "new", n_per_arm[1])):
        arms[arm] = {"label": arm, "role": role}
        if n is not None:
            arms[arm] |= {"n_randomised": n, "n_source": TEST_SOURCE}
    times = {"baseline": 0, "follow_up": list(follow_up), "source": TEST_SOURCE}
    tables = {}
    for name, o in outcomes.items():
        tables[name] = {
            "label": name,
            "instrument": o.get("instrument", "other"),
            "unit": "points",
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


def wide_scores(patients: pd.DataFrame, arm: str, truth: TrialTruth) -> np.ndarray:
    """One arm's simulated scores as a ``(patient, time, outcome)`` array, built independently of the
    simulation's own reshaping so that tests can check it."""
    sub = patients[patients.arm == arm].sort_values(["patient", "time", "outcome"])
    cube = sub.set_index(["patient", "time", "outcome"])["value"].unstack(["time", "outcome"])
    cube = cube[[(t, o) for t in truth.times for o in truth.outcome_names]]
    return cube.to_numpy().reshape(len(cube), len(truth.times), len(truth.outcomes))


def synthetic_fit(study: Path, *, prior_set: str = "vague", seed: int = 1, chains: int = 2, draws: int = 300) -> Fit:
    """A :class:`~bayes_stenosis.run.Fit` of ``study`` made without sampling, for tests of run folders and
    of the commands that read them (``write_run`` writes it like any fit, in about a second).

    The "posterior" is normal noise, delta ~ N(0, 0.2) standardized units per cell, and the "prior"
    N(0, 1): NOT a posterior of the study. The decision table, diagnostics and verdict are computed
    from these draws by the package's own functions.
    """
    # the run layer pulls in PyMC; imported here so that the study builders above stay light
    from bayes_stenosis.diagnostics import decision_probability_table, parameter_table, sampler_table, verdict
    from bayes_stenosis.inference import SamplerSettings
    from bayes_stenosis.model import prepare_inputs, resolve_prior
    from bayes_stenosis.run import Fit, decide, load_model_spec
    from bayes_stenosis.study import load_study

    loaded = load_study(study)
    spec, spec_path, spec_sha = load_model_spec("default")
    settings = SamplerSettings.from_spec(spec.sampler, seed=seed, chains=chains, draws=draws, tune=draws)
    inputs = prepare_inputs(loaded, spec)
    idata = _noise_idata(inputs, seed=seed, chains=chains, draws=draws)
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


def _noise_idata(inputs: ModelInputs, *, seed: int, chains: int, draws: int) -> InferenceData:
    """The InferenceData of :func:`synthetic_fit`: ``delta`` (and ``delta_natural``) per cell, posterior
    N(0, 0.2) and prior N(0, 1) in standardized units, with sample stats of a fit without divergences."""
    import arviz as az

    rng = np.random.default_rng(seed)
    cells = (len(inputs.coords["time"]), len(inputs.coords["outcome"]))
    delta = rng.normal(0.0, 0.2, (chains, draws, *cells))
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
