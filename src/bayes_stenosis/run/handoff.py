"""What a run hands a meta-analyst: ``approximations.json`` (the posterior's normal approximation, and the
likelihood's, with the prior divided out) and the draws table with its metadata
(``draws_contrasts.parquet`` / ``.csv`` and ``draws_contrasts.csv-metadata.json``).

Each says what it is: the posterior includes the run's prior (named, with its parameters), so pooling
it under another prior counts a prior twice; the likelihood does not. Units, direction, the
standardising SDs and their sources, the correlation matrix, the seed and the spec's SHA-256 travel
with the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from bayes_stenosis import __version__
from bayes_stenosis import decisions as dec
from bayes_stenosis.model import ModelInputs
from bayes_stenosis.spec import ModelSpec, ResolvedPrior
from bayes_stenosis.study import Study

#: The draws table's columns, described (parquet schema metadata and the CSV's sidecar).
DRAWS_COLUMNS = {
    ".chain": ("integer", "chain, 1-based (R package posterior's .chain)"),
    ".iteration": ("integer", "draw within its chain, 1-based (posterior's .iteration)"),
    ".draw": ("integer", "draw over all chains, 1-based and unique: (.chain - 1) x draws per chain + .iteration"),
    "time": ("number", "follow-up time since baseline (weeks)"),
    "outcome": ("string", "outcome name (study.toml)"),
    "unit": ("string", "unit of delta_natural for this outcome"),
    "direction": ("string", "lower_is_better: a negative delta favours the new arm; higher_is_better: a positive one"),
    "delta_natural": ("number", "posterior draw of delta = change in the new arm minus change in the reference arm"),
    "delta_std": ("number", "delta_natural / the outcome's standardising SD"),
}


def prior_normal(
    prior: ResolvedPrior, spec: ModelSpec, inputs: ModelInputs, prior_delta_natural: xr.DataArray | None
) -> dec.PriorNormal | None:
    """The prior of delta (standardized, time-major cells) as a normal: its exact moments for a normal
    prior set, a moment-matched normal of the prior draws otherwise (None without draws)."""
    times, outcomes = inputs.coords["time"], inputs.coords["outcome"]
    if prior.family == "normal":
        return dec.normal_prior(
            prior.family,
            prior.mu,
            prior.sigma,
            len(times),
            len(outcomes),
            pooled=prior.outcome_pooling == "partial",
            tau_scale=float(spec.hierarchy.tau_scale),
        )
    if prior_delta_natural is None:
        return None
    draws = prior_delta_natural.transpose(..., "time", "outcome").values.reshape(-1, len(times) * len(outcomes))
    scale = np.tile(np.asarray(inputs.scale, dtype=float), len(times))
    return dec.moment_matched_prior(draws / scale, prior.text())


def evidence_notes(inputs: ModelInputs) -> tuple[bool, list[str]]:
    """Whether the likelihood of delta is normal, and what a meta-analyst should know about the evidence."""
    levels = set(inputs.evidence_by_cell["evidence"]) - {"none"}
    notes = []
    if "threshold" in levels:
        notes.append(
            "threshold statements ('P<alpha' / 'P>alpha'): their likelihood is flat-topped, not normal (a "
            "'P>0.05' says only that the test statistic fell inside the critical values); the normal likelihood "
            "summarises its first two moments only. Prefer the draws or the posterior with its prior stated."
        )
    if levels & {"arm_summary", "ipd"}:
        notes.append(
            "arm summaries / patient data: the likelihood of delta integrates over the priors of the other "
            "parameters (reference-arm change, SDs, correlations); close to normal when the arms are large"
        )
    if "contrast" in levels and len(inputs.contrasts) > 1:
        notes.append("several reported contrasts with uncertain error correlations: a mixture of normals")
    gaussian = levels == {"contrast"} and len(inputs.contrasts) == 1
    return gaussian, notes


def meta_analysis_approximation(
    delta_natural: xr.DataArray,
    delta_std: xr.DataArray,
    study: Study,
    inputs: ModelInputs,
    spec: ModelSpec,
    prior: ResolvedPrior | None,
    prior_set: str | None,
    prior_delta_natural: xr.DataArray | None,
    provenance: Mapping[str, object] | None = None,
) -> dict:
    """``approximations.json``: the posterior's normal approximation, what it includes, and the likelihood."""
    outcomes = list(inputs.coords["outcome"])
    direction = dict(zip(outcomes, inputs.direction, strict=True))
    units = {o: study.outcome(o).unit for o in outcomes}
    margins = dict(zip(outcomes, inputs.margins.tolist(), strict=True))
    approx = dec.normal_approximation(delta_natural, delta_std, margins, units)
    scale = dict(zip(outcomes, np.asarray(inputs.scale, dtype=float).tolist(), strict=True))
    approx["direction"] = [direction[c["outcome"]] for c in approx["cells"]]
    approx["time_unit"] = study.meta.times.unit
    approx["standardising_sds"] = [
        {"outcome": o, "sd": scale[o], "unit": units[o], "source": src}
        for o, src in zip(outcomes, inputs.scale_source, strict=True)
    ]
    prior_text = prior.text() if prior is not None else "unknown"
    approx["prior"] = _prior_block(prior, prior_set, prior_text, spec)
    contrast = f"{study.new_arm} minus {study.reference_arm}: change from baseline (follow-up minus baseline)"
    approx["description"] = (
        "POSTERIOR (includes the prior): multivariate normal approximation of the posterior of delta = "
        f"{contrast}, natural units and standardized scale, under prior set '{prior_set}' ({prior_text}). A "
        "meta-analysis that applies its own prior must not pool these numbers (it would count a prior twice): "
        "use 'likelihood', the same with this prior divided out."
    )
    approx["likelihood"] = _likelihood_block(approx, inputs, spec, prior, prior_delta_natural, scale)
    approx["metadata"] = {
        "study": study.id,
        "simulated": study.simulated,
        "contrast": contrast,
        "new_arm": study.new_arm,
        "reference_arm": study.reference_arm,
        "times": [float(t) for t in inputs.coords["time"]],
        "interval": {"kind": spec.decision.interval_kind, "prob": spec.decision.interval_prob},
        "package_version": __version__,
        **dict(provenance or {}),
    }
    dec.validate_approximation(approx)
    return approx


def _prior_block(prior: ResolvedPrior | None, prior_set: str | None, prior_text: str, spec: ModelSpec) -> dict:
    """The run's prior on Delta[t] as approximations.json states it (``tau_scale`` when outcomes are pooled)."""
    pooled = prior is not None and prior.outcome_pooling == "partial"
    return {
        "set": prior_set or "unknown",
        "on": "Delta[t], standardized units (delta[t, o] = Delta[t] + tau z[t, o] when outcomes are pooled)",
        "text": prior_text,
        **(prior.model_dump() if prior is not None else {}),
        "tau_scale": float(spec.hierarchy.tau_scale) if pooled else None,
    }


def _likelihood_block(
    approx: dict,
    inputs: ModelInputs,
    spec: ModelSpec,
    prior: ResolvedPrior | None,
    prior_delta_natural: xr.DataArray | None,
    scale: dict[str, float],
) -> dict:
    """The likelihood's normal approximation: the posterior's with the prior's normal divided out, over the
    cells with evidence (:func:`bayes_stenosis.decisions.likelihood_block`); "not_available" when the
    prior is unknown or has no draws to approximate it."""
    cells = inputs.evidence_by_cell.set_index(["time", "outcome"])["evidence"]
    keep = np.array([cells.get((c["time"], c["outcome"]), "none") != "none" for c in approx["cells"]])
    normal = None if prior is None else prior_normal(prior, spec, inputs, prior_delta_natural)
    gaussian, notes = evidence_notes(inputs)
    if normal is None:
        return {
            "approximates": "likelihood",
            "status": "not_available",
            "description": "LIKELIHOOD: not computed",
            "method": "none",
            "exact": False,
            "notes": notes,
            "prior_normal": {},
            "names": [],
            "reason": "the run's prior is unknown or has no draws to approximate it",
        }
    per_name = np.array([scale[c["outcome"]] for c in approx["cells"]])
    return dec.likelihood_block(approx, normal, per_name, keep=keep, gaussian_evidence=gaussian, notes=notes)


def contrast_draws(delta_natural: xr.DataArray, delta_std: xr.DataArray, study: Study) -> pd.DataFrame:
    """The posterior draws of every contrast, one row per chain x draw x cell, with R ``posterior``'s
    1-based ``.chain``, ``.iteration`` and ``.draw`` (see :data:`DRAWS_COLUMNS`)."""
    frame = (
        delta_natural.to_dataframe(name="delta_natural")[["delta_natural"]]
        .join(delta_std.to_dataframe(name="delta_std")[["delta_std"]])
        .reset_index()
    )
    per_chain = delta_natural.sizes["draw"]
    chain_pos = pd.Index(delta_natural.coords["chain"].values).get_indexer(frame["chain"])
    draw_pos = pd.Index(delta_natural.coords["draw"].values).get_indexer(frame["draw"])
    frame[".chain"] = chain_pos + 1
    frame[".iteration"] = draw_pos + 1
    frame[".draw"] = chain_pos * per_chain + draw_pos + 1
    outcomes = {o: study.outcome(str(o)) for o in frame["outcome"].unique()}  # per outcome, not per row
    frame["unit"] = frame["outcome"].map({o: outcome.unit for o, outcome in outcomes.items()})
    frame["direction"] = frame["outcome"].map({o: outcome.direction for o, outcome in outcomes.items()})
    return frame[list(DRAWS_COLUMNS)]


def draws_metadata(approximation: dict) -> dict:
    """What the draws are, for the parquet schema metadata and the CSV's sidecar: study, arms, units,
    direction, the prior (posterior draws include it), the seed and the spec's SHA-256."""
    meta = approximation.get("metadata", {})
    cells = [c["outcome"] for c in approximation["cells"]]
    return {
        "what": "posterior draws of delta (they include the prior named in 'prior')",
        "contrast": meta.get("contrast"),
        "study": meta.get("study"),
        "simulated": meta.get("simulated"),
        "new_arm": meta.get("new_arm"),
        "reference_arm": meta.get("reference_arm"),
        "time_unit": approximation["time_unit"],
        "units": dict(zip(cells, approximation["units"], strict=True)),
        "direction": dict(zip(cells, approximation["direction"], strict=True)),
        "standardising_sds": approximation["standardising_sds"],
        "prior": approximation["prior"],
        "seed": meta.get("seed"),
        "spec_name": meta.get("spec_name"),
        "spec_sha256": meta.get("spec_sha256"),
        "package_version": meta.get("package_version"),
        "columns": {name: text for name, (_, text) in DRAWS_COLUMNS.items()},
    }


def csv_sidecar(metadata: dict, csv_name: str) -> dict:
    """A CSV on the Web (W3C CSVW) description of the draws CSV, with the package's metadata."""
    columns = [
        {"name": name.lstrip("."), "titles": name, "datatype": kind, "dc:description": text}
        for name, (kind, text) in DRAWS_COLUMNS.items()
    ]
    return {
        "@context": "http://www.w3.org/ns/csvw",
        "url": csv_name,
        "dc:description": metadata["what"],
        "tableSchema": {"columns": columns},
        "bayes_stenosis": metadata,
    }
