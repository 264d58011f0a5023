"""What a fit decides, in memory: contrasts, the decision table, margin curves, the normal
approximation and the contrast draws (:class:`Results`), and writing them into a run folder."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import arviz as az
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr

from bayes_stenosis import decisions as dec
from bayes_stenosis.model import ModelInputs
from bayes_stenosis.run.folder import write_json
from bayes_stenosis.run.handoff import contrast_draws, csv_sidecar, draws_metadata, meta_analysis_approximation
from bayes_stenosis.spec import ModelSpec, ResolvedPrior
from bayes_stenosis.study import Study

DRAWS_PARQUET = "draws_contrasts.parquet"
DRAWS_CSV = "draws_contrasts.csv"
#: The CSV's description (W3C CSV on the Web naming: ``<file>.csv-metadata.json``).
DRAWS_CSV_METADATA = "draws_contrasts.csv-metadata.json"
#: The parquet schema metadata key holding the draws' description (JSON).
DRAWS_METADATA_KEY = b"bayes_stenosis"


@dataclass(frozen=True)
class Results:
    """The decision quantities of one fit (each written to the run folder file of the same name).

    Attributes
    ----------
    contrasts
        Posterior treatment differences per cell (natural and standardized units, intervals).
    decisions
        P(equivalence) per cell and jointly, with Monte Carlo SEs and the decision.
    margin_curves
        P(|delta| < m) over a grid of margins.
    approximation
        Normal approximations of the posterior of the differences and of their likelihood (the prior
        divided out), with what they include (``approximations.json``).
    draws
        The contrast draws, one row per chain x draw x cell (``.chain``, ``.iteration``, ``.draw``: 1-based).
    rule_text
        The decision rule in words.
    """

    contrasts: pd.DataFrame
    decisions: pd.DataFrame
    margin_curves: pd.DataFrame
    approximation: dict
    draws: pd.DataFrame
    rule_text: str

    def write(self, folder: Path) -> None:
        """Write ``contrasts.csv``, ``decisions.csv``, ``margin_curves.csv``, the draws (parquet with its
        metadata, csv with its ``.csv-metadata.json`` sidecar) and ``approximations.json`` into ``folder``."""
        self.contrasts.to_csv(folder / "contrasts.csv", index=False)
        self.decisions.to_csv(folder / "decisions.csv", index=False)
        self.margin_curves.to_csv(folder / "margin_curves.csv", index=False)
        # what the draws are travels with them: parquet schema metadata, and a CSVW sidecar for the CSV
        metadata = draws_metadata(self.approximation)
        table = pa.Table.from_pandas(self.draws, preserve_index=False)
        schema_metadata = {**(table.schema.metadata or {}), DRAWS_METADATA_KEY: json.dumps(metadata).encode()}
        pq.write_table(table.replace_schema_metadata(schema_metadata), folder / DRAWS_PARQUET)
        self.draws.to_csv(folder / DRAWS_CSV, index=False)
        write_json(folder / DRAWS_CSV_METADATA, csv_sidecar(metadata, DRAWS_CSV))
        write_json(folder / "approximations.json", self.approximation)


def evidence_mask(inputs: ModelInputs) -> xr.DataArray:
    """Boolean (time, outcome): the cells with any evidence (arm summaries, contrasts, statements, IPD)."""
    cells = inputs.evidence_by_cell.set_index(["time", "outcome"])["evidence"]
    times, outcomes = inputs.coords["time"], inputs.coords["outcome"]
    values = [[cells.get((t, o), "none") != "none" for o in outcomes] for t in times]
    return xr.DataArray(values, dims=("time", "outcome"), coords={"time": times, "outcome": outcomes})


def decide(
    idata: az.InferenceData,
    study: Study,
    inputs: ModelInputs,
    spec: ModelSpec,
    prior_delta_natural: xr.DataArray | None = None,
    *,
    prior: ResolvedPrior | None = None,
    prior_set: str | None = None,
    provenance: Mapping[str, object] | None = None,
) -> Results:
    """Contrasts, decision table, margin curves, draws and the normal approximations of a fit.

    ``prior_delta_natural``: prior draws of delta for the table's prior column (default: the
    InferenceData's prior group, if any). ``prior`` / ``prior_set``: the prior on Delta, named in the
    meta-analysis hand-off and divided out of its likelihood approximation; ``provenance``: the seed and
    spec name and SHA-256 recorded with it.
    """
    interval = dec.IntervalSpec(kind=spec.decision.interval_kind, prob=spec.decision.interval_prob)
    rule = dec.DecisionRule(threshold=spec.decision.threshold)
    outcomes = inputs.coords["outcome"]
    margins = dict(zip(outcomes, inputs.margins.tolist(), strict=True))
    direction = dict(zip(outcomes, inputs.direction, strict=True))
    labels = (study.meta.arms[study.new_arm].label, study.meta.arms[study.reference_arm].label)
    delta_nat = idata.posterior["delta_natural"]
    delta_std = idata.posterior["delta"]
    prior_nat = _prior_delta(idata, prior_delta_natural)
    contrasts = dec.summarise_contrasts(delta_nat, delta_std, interval, direction, labels)
    decisions = decision_rows(idata, inputs, spec, prior_nat)
    curves = dec.margin_curves(
        delta_nat,
        margins,
        n_grid=spec.decision.margin_curve_points,
        max_multiple=spec.decision.margin_curve_max_multiple,
    )
    approx = meta_analysis_approximation(
        delta_nat, delta_std, study, inputs, spec, prior, prior_set, prior_nat, provenance
    )
    _insert_evidence(contrasts, inputs)
    return Results(
        contrasts=contrasts,
        decisions=decisions,
        margin_curves=curves,
        approximation=approx,
        draws=contrast_draws(delta_nat, delta_std, study),
        rule_text=rule.text,
    )


def decision_rows(
    idata: az.InferenceData, inputs: ModelInputs, spec: ModelSpec, prior_delta_natural: xr.DataArray | None = None
) -> pd.DataFrame:
    """The decision table of a fit (``decisions.csv``): :func:`bayes_stenosis.decisions.decision_table` of the
    posterior of delta with the study's margins and directions, the prior column from ``prior_delta_natural``
    (default: the InferenceData's prior group, if any), and each row's evidence."""
    outcomes = inputs.coords["outcome"]
    decisions = dec.decision_table(
        idata.posterior["delta_natural"],
        dict(zip(outcomes, inputs.margins.tolist(), strict=True)),
        dict(zip(outcomes, inputs.direction, strict=True)),
        dec.DecisionRule(threshold=spec.decision.threshold),
        prior_delta_natural=_prior_delta(idata, prior_delta_natural),
        evidence=evidence_mask(inputs),
    )
    _insert_evidence(decisions, inputs)
    return decisions


def _insert_evidence(frame: pd.DataFrame, inputs: ModelInputs) -> None:
    """The evidence of each row's cell as the third column ("joint" for a joint row)."""
    evidence = inputs.evidence_by_cell.set_index(["time", "outcome"])["evidence"]
    keys = list(zip(frame["time"], frame["outcome"], strict=True))
    frame.insert(2, "evidence", [evidence.get(k, "joint") for k in keys])


def _prior_delta(idata: az.InferenceData, given: xr.DataArray | None) -> xr.DataArray | None:
    """The prior draws of delta behind the prior column: ``given``, else the InferenceData's prior group's."""
    if given is None and "prior" in idata.groups():
        return idata.prior["delta_natural"]
    return given
