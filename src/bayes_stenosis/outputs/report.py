"""``report.html``: one self-contained HTML file per run folder, for a reviewer to read and email.

The answer comes first (:mod:`bayes_stenosis.outputs.headline`: each cell's delta with its interval,
P(equiv), the prior's P(equiv) and the decision, and with a sensitivity sweep beside the run the range
over its fits), then the sections of the Bayesian Analysis Reporting Guidelines (Kruschke 2021, Nat Hum
Behav 5:1282-91): question and data with provenance, model and priors with justification, prior
predictive check, computation and diagnostics, posterior predictive check, results and decisions,
sensitivity, frequentist reproduction, reproducibility.

The report reads only the run folder (``manifest.json``, the CSVs, ``posterior.nc``, ``plots/``,
``inputs/``, and optional results other commands put there or beside it: ``reproduce.csv``,
``missing_ipd.csv``, ``../sensitivity/``), each file checked as it is read. Images are embedded as
base64 PNG data URIs and the style sheet is inline: the page makes no network request. Templates are
Jinja2 files shipped in ``bayes_stenosis/templates``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pandas as pd

from bayes_stenosis import __version__
from bayes_stenosis.diagnostics import RunDiagnostics, near_threshold_note
from bayes_stenosis.outputs.checks import ppc_table, prior_predictive_ranges, prior_vs_posterior
from bayes_stenosis.outputs.figures import figure_captions
from bayes_stenosis.outputs.headline import beyond_text, headline_labels, headline_table, interval_label
from bayes_stenosis.outputs.sources import evidence_files, final_folder, prior_rows, rerun_command, study_sources
from bayes_stenosis.outputs.sweep import matching_sweep, sweep_command, sweep_plan
from bayes_stenosis.outputs.tables import COLUMN_LABELS, fmt, png_data_uri, read_csv_or_none, table_context
from bayes_stenosis.run import RunFolder, load_run, published_file

REPORT_NAME = "report.html"

#: Columns of each results table the report shows, in order. The decision table is two tables (the
#: decision, then the other decision probabilities), so that each fits the page's column.
DECISION_COLUMNS = [
    "time",
    "outcome",
    "evidence",
    "margin",
    "prob_equivalence",
    "mcse_prob_equivalence",
    "prob_equivalence_prior",
    "decision",
    "decision_within_2_mcse_of_threshold",
]
OTHER_PROBABILITY_COLUMNS = [
    "time",
    "outcome",
    "prob_noninferiority",
    "prob_noninferiority_prior",
    "prob_superiority",
    "prob_superiority_prior",
    "prob_harm_beyond_margin",
]
CONTRAST_COLUMNS = [
    "time",
    "outcome",
    "evidence",
    "mean_natural",
    "median_natural",
    "lower_natural",
    "upper_natural",
    "mcse_mean_natural",
    "mcse_lower_natural",
    "mcse_upper_natural",
    "mean_std",
    "lower_std",
    "upper_std",
]
REPRODUCE_COLUMNS = ["time", "outcome", "comparison", "test", "published", "recomputed", "status", "note"]
SENSITIVITY_COLUMNS = ["configuration", "margin_set", "scope", "time", "outcome", "margin", "prob_equivalence"]
SENSITIVITY_COLUMNS += ["decision", "diagnostics_status"]
ROBUSTNESS_COLUMNS = ["time", "outcome", "prob_equivalence_reference", "decision_reference", "prob_equivalence_min"]
ROBUSTNESS_COLUMNS += ["configuration_min", "prob_equivalence_max", "n_equivalent", "n_fits", "n_failed_diagnostics"]


def run_table(run: RunFolder, name: str) -> pd.DataFrame | None:
    """A CSV of the run, checked against its manifest; None when the run has no such file."""
    return read_csv_or_none(run.file(name)) if run.has(name) else None


def sweep_results(folder: Path, manifest: dict) -> dict | None:
    """The sensitivity sweep of this run's study files and spec (``RUN/sensitivity.csv`` or
    ``RUN/../sensitivity/``, :func:`~bayes_stenosis.outputs.sweep.matching_sweep`), its files checked against
    the sweep folder's own manifest; None without one."""
    sweep_folder, _ = matching_sweep(folder, manifest)
    if sweep_folder is None:
        return None
    candidate = sweep_folder / "sensitivity.csv"
    frame = read_csv_or_none(published_file(candidate))
    png = published_file(candidate.with_name("sensitivity.png"))
    robust = read_csv_or_none(published_file(candidate.with_name("robustness.csv")))
    if frame is None:  # a sweep folder with its robustness table only
        frame = pd.DataFrame()
    n_fits = int(frame["configuration"].nunique()) if "configuration" in frame else 0
    return {
        "path": str(candidate),
        "frame": frame,
        "robust_frame": robust,
        "n_fits": n_fits,
        "table": table_context(frame.head(400), SENSITIVITY_COLUMNS),
        "n_rows": len(frame),
        "image": png_data_uri(png) if png is not None else None,
        "robustness": None if robust is None else table_context(robust, ROBUSTNESS_COLUMNS),
    }


def missing_sweep(run: RunFolder) -> dict:
    """Without a sweep of this run: why (none, or one of other inputs beside the run) and what making one
    takes (:func:`~bayes_stenosis.outputs.sweep.sweep_plan`: command, fits, estimated minutes)."""
    _, mismatch = matching_sweep(run.path, run.manifest)
    plan = sweep_plan(run)
    return {
        "mismatch": mismatch,
        "plan": plan,
        "command": plan["command"] if plan else sweep_command(run.manifest, run.path),
    }


def optional_results(run: RunFolder) -> dict:
    """The frequentist reproduction and the missing patient data, when the run has them."""
    out: dict = {}
    reproduce = run_table(run, "reproduce.csv")
    if reproduce is not None:
        notes = run.file("reproduce.md").read_text() if run.has("reproduce.md") else ""
        out["reproduce"] = {"table": table_context(reproduce, REPRODUCE_COLUMNS), "notes": notes}
    missing = run_table(run, "missing_ipd.csv")
    if missing is not None:
        out["missing_ipd"] = table_context(missing)
    return out


def headline_context(run: RunFolder, decisions: pd.DataFrame, contrasts: pd.DataFrame, sweep: dict | None) -> dict:
    """The first table of the report: the answer, with its headers in words."""
    manifest = run.manifest
    robust = None if sweep is None else sweep["robust_frame"]
    table = headline_table(decisions, contrasts, manifest, robust)
    labels = headline_labels(manifest)
    columns = [c for c in table.columns if c != "scope"]
    beyond = decisions[decisions["scope"] == "any_beyond_margin"]
    return {
        "columns": [labels[c] for c in columns],
        "rows": [
            {"cells": [rec[c] for c in columns], "joint": rec["scope"] != "cell", "decision": rec["decision"]}
            for rec in table.to_dict("records")
        ],
        "interval": interval_label(manifest),
        "n_fits": None if sweep is None else sweep["n_fits"],
        "beyond": None if not len(beyond) else beyond_text(beyond.iloc[0], manifest),
    }


def prior_carry_table(decisions: pd.DataFrame, idata) -> pd.DataFrame | None:
    """Prior-only vs posterior P(equiv) per cell, and how much the data narrowed the prior."""
    cells = decisions[decisions["scope"] == "cell"]
    if "prob_equivalence_prior" not in cells:
        return None
    carry = cells[["time", "outcome", "margin", "prob_equivalence_prior", "prob_equivalence"]].copy()
    carry["change_from_prior"] = carry["prob_equivalence"] - carry["prob_equivalence_prior"]
    pvp = prior_vs_posterior(idata)
    if pvp is not None:
        carry = carry.merge(pvp[["time", "outcome", "width_ratio"]], on=["time", "outcome"], how="left")
    return carry.rename(
        columns={"change_from_prior": "change from the prior", "width_ratio": "posterior / prior 95 % width"}
    )


def results_tables(run: RunFolder, decisions: pd.DataFrame, contrasts: pd.DataFrame) -> dict:
    """The decision table (human headers, probabilities as bounds where no draw disagrees), the
    contrasts, and how much the prior carries."""
    manifest = run.manifest
    sampler = manifest["sampler"]
    n_post = int(sampler["chains"]) * int(sampler["draws"])
    n_prior = int(sampler.get("prior_draws_decisions", 0)) or n_post
    columns = DECISION_COLUMNS + OTHER_PROBABILITY_COLUMNS
    probs = {c: n_prior if c.endswith("_prior") else n_post for c in columns if c.startswith("prob_")}
    shown = decisions[decisions["scope"] != "any_beyond_margin"].copy()
    shown["outcome"] = [
        {"joint_time": "all outcomes", "joint_all": "all cells"}.get(s, o)
        for s, o in zip(shown["scope"], shown["outcome"], strict=True)
    ]
    interval = interval_label(manifest)
    contrast_labels = {"lower_natural": f"{interval} lower", "upper_natural": f"{interval} upper"}
    return {
        "decisions_table": table_context(shown, DECISION_COLUMNS, probabilities=probs),
        "other_probabilities_table": table_context(shown, OTHER_PROBABILITY_COLUMNS, probabilities=probs),
        "contrasts_table": table_context(
            contrasts, CONTRAST_COLUMNS, labels={**COLUMN_LABELS, **contrast_labels}, digits=3
        ),
        "prior_carry": table_context(prior_carry_table(decisions, run.idata)),
    }


def data_context(run: RunFolder, study_toml: dict, evidence: pd.DataFrame | None) -> dict:
    """Question and data: the study, its arms and outcomes, the evidence per cell and where it comes from."""
    manifest = run.manifest
    levels = sorted(set(evidence["evidence"])) if evidence is not None else []
    return {
        "study": manifest["study"],
        "study_toml": study_toml,
        "arms": manifest["arms"],
        "arm_labels": {k: v.get("label", k) for k, v in study_toml.get("arms", {}).items()},
        "outcomes": list(manifest["margins"]),
        "units": manifest.get("units", {}),
        "margins": manifest["margins"],
        "levels": levels,
        "threshold_only": levels == ["threshold"],
        "simulated": bool(manifest["study"].get("simulated")),
        "evidence_table": table_context(evidence),
        "sources": study_sources(study_toml),
        "evidence_files": evidence_files(run.path),
        "notes": study_toml.get("study", {}).get("notes", []),
        "pages_read": study_toml.get("study", {}).get("pages_read", []),
    }


def model_context(run: RunFolder, study_toml: dict) -> dict:
    """Model and priors: each prior with its justification, the spec, the standardising scales, the hierarchy
    and the prior predictive ranges."""
    manifest = run.manifest
    spec_text = run.file("inputs/spec.toml").read_text() if run.has("inputs/spec.toml") else None
    units = manifest.get("units", {})
    outcomes = list(manifest["margins"])
    instruments = {o: study_toml.get("outcomes", {}).get(o, {}).get("instrument", "other") for o in outcomes}
    return {
        "priors": prior_rows(manifest, spec_text, outcomes, instruments),
        "spec_text": spec_text,
        "scale_rows": [
            {"outcome": o, "value": fmt(v["value"]), "unit": units.get(o, ""), "source": v["source"]}
            for o, v in manifest.get("scale", {}).items()
        ],
        "hierarchy": manifest["spec"]["content"].get("hierarchy", {}),
        "prior_ranges": table_context(prior_predictive_ranges(run.idata, study_toml, units)),
    }


def computation_context(run: RunFolder, diag: RunDiagnostics) -> dict:
    """Computation and diagnostics: the verdict, the sampler, the parameters' and decision probabilities'
    diagnostics, and the posterior predictive check's table."""
    sampler = diag.sampler.rename(columns={"ebfmi": "E-BFMI", "treedepth_saturation_fraction": "tree-depth saturation"})
    return {
        "verdict": diag.verdict,
        "near_threshold_note": near_threshold_note(diag.decision_probabilities),
        "sampler_settings": run.manifest["sampler"],
        "sampler_table": table_context(sampler),
        "param_table": table_context(diag.parameters, ["quantity", "mean", "sd", "r_hat", "ess_bulk", "ess_tail"]),
        "n_params": len(diag.parameters),
        "prob_table": table_context(
            diag.decision_probabilities,
            ["quantity", "mean", "mcse_mean", "r_hat", "ess_bulk", "constant", "near_threshold"],
        ),
        "ppc_table": table_context(ppc_table(run.idata, run.path)),
    }


def reproducibility_context(manifest: dict, folder: Path) -> dict:
    """Reproducibility: versions, the command that reruns the fit, timings and the run folder's files."""
    return {
        "versions": manifest.get("versions", {}),
        "rerun": rerun_command(manifest, folder),
        "timings": manifest.get("timings_seconds", {}),
        "run_folder": str(final_folder(folder)),
        "files": sorted(p.name for p in folder.iterdir() if p.is_file()),
    }


def build_context(run: str | Path | RunFolder) -> dict:
    """Everything the template shows, from the run folder only (its files checked as they are read)."""
    run = run if isinstance(run, RunFolder) else load_run(run)
    folder, manifest = run.path, run.manifest
    diag = run.diagnostics()
    decisions, contrasts = run.table("decisions"), run.table("contrasts")
    evidence = run_table(run, "evidence.csv")
    study_text = run.file("inputs/study/study.toml").read_text() if run.has("inputs/study/study.toml") else ""
    study_toml = tomllib.loads(study_text)
    sweep = sweep_results(folder, manifest)
    context = {
        "package_version": __version__,
        "manifest": manifest,
        "manifest_json": json.dumps(manifest, indent=2),
        **data_context(run, study_toml, evidence),
        "interval": manifest["interval"],
        "rule_text": manifest["decision_rule"]["text"],
        "threshold": manifest["decision_rule"]["threshold"],
        "headline": headline_context(run, decisions, contrasts, sweep),
        **model_context(run, study_toml),
        **computation_context(run, diag),
        **results_tables(run, decisions, contrasts),
        **reproducibility_context(manifest, folder),
    }
    context.update(figure_captions(folder / "plots", manifest, run.idata, contrasts, decisions))
    if sweep is not None:
        context["sensitivity"] = {k: v for k, v in sweep.items() if not k.endswith("frame")}
    else:
        context["sweep_missing"] = missing_sweep(run)
    context.update(optional_results(run))
    return context
