"""The tables of a sweep: one decision table per fit and margin set (``sensitivity.csv``), one row per fit
(``fits.csv``), and the robustness of each decision over the fits (``robustness.csv``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_stenosis import decisions as dec
from bayes_stenosis.analyses.sensitivity.configs import FitConfig, threshold_assumptions
from bayes_stenosis.model import statement_dependence, threshold_design
from bayes_stenosis.outputs.sweep import matching_sweep
from bayes_stenosis.run import Fit, evidence_mask, published_file, read_manifest

__all__ = [
    "COLUMNS",
    "fit_summary",
    "margin_set_table",
    "matching_robustness",
    "outcome_pooling_text",
    "robustness_table",
    "with_reference_decisions",
]

#: Columns of sensitivity.csv, in order (the report reads it by these names).
COLUMNS = (
    "study",
    "configuration",
    "prior_set",
    "prior_on_Delta",
    "correlation",
    "outcome_pooling",
    "between_test",
    "followup_sd_ratio",
    "analysed_fraction",
    "threshold_statements",
    "margin_set",
    "scope",
    "time",
    "outcome",
    "evidence",
    "margin",
    "margin_source",
    "delta_mean_natural",
    "delta_sd_natural",
    "prob_equivalence",
    "mcse_prob_equivalence",
    "prob_equivalence_prior",
    "prob_noninferiority",
    "mcse_prob_noninferiority",
    "prob_noninferiority_prior",
    "prob_superiority",
    "prob_harm_beyond_margin",
    "decision",
    "decision_within_2_mcse_of_threshold",
    "decision_threshold",
    "decision_differs_from_reference",
    "reference_configuration",
    "diagnostics_status",
    "diagnostics_reasons",
    "divergences",
    "max_rhat",
    "min_ess_bulk",
    "min_ess_tail",
    "sampling_seconds",
)


def fit_summary(fitted: Fit, cfg: FitConfig) -> dict:
    """One row of ``fits.csv``: the configuration, its seed, its diagnostics and sampling time."""
    params, samp, v = fitted.parameters, fitted.sampler_stats, fitted.verdict
    finite = params.dropna(subset=["r_hat"])
    return {
        "configuration": cfg.label,
        "prior_set": cfg.prior_set,
        "prior_on_Delta": fitted.prior.text(),
        "correlation": cfg.correlation_label,
        "outcome_pooling": outcome_pooling_text(fitted),
        **threshold_assumptions(fitted.spec, len(fitted.inputs.thresholds) > 0),
        "threshold_statements": statement_treatment(fitted),
        "seed": fitted.settings.seed,
        "diagnostics_status": v.status,
        "diagnostics_reasons": "; ".join(v.reasons) if v.reasons else "all checks passed",
        "divergences": int(np.nansum(samp["divergences"])),
        "max_rhat": float(finite["r_hat"].max()) if len(finite) else np.nan,
        "min_ess_bulk": float(finite["ess_bulk"].min()) if len(finite) else np.nan,
        "min_ess_tail": float(finite["ess_tail"].min()) if len(finite) else np.nan,
        "sampling_seconds": fitted.timings["sample"],
    }


def statement_treatment(fitted: Fit) -> str:
    """How the fit's threshold statements entered the likelihood: "joint" (one event) or "independent"
    (per statement; e.g. a test on follow-up scores), empty without statements (the run manifest's
    ``threshold_statements``)."""
    treatment = statement_dependence(threshold_design(fitted.inputs, fitted.spec), fitted.spec)
    return treatment["treatment"] if treatment else ""


def outcome_pooling_text(fitted: Fit) -> str:
    if fitted.prior.outcome_pooling == "none":
        return "none"
    return f"partial, tau ~ HalfNormal({fitted.spec.hierarchy.tau_scale:g} SMD)"


def margin_set_table(fitted: Fit, name: str, margin_set: dict[str, tuple[float, str]], fit_info: dict) -> pd.DataFrame:
    """The decision table of one fit under one margin set, with the fit's diagnostics on every row."""
    outcomes = fitted.inputs.coords["outcome"]
    direction = dict(zip(outcomes, fitted.inputs.direction, strict=True))
    rule = dec.DecisionRule(threshold=fitted.spec.decision.threshold)
    delta_nat = fitted.idata.posterior["delta_natural"]
    margins = {o: margin_set[o][0] for o in outcomes}
    if margins == dict(zip(outcomes, fitted.inputs.margins.tolist(), strict=True)):
        # the fit's own margins: its decision table is this table (same draws, margins, rule and prior draws)
        table = fitted.decisions.drop(columns="evidence")
    else:
        table = dec.decision_table(
            delta_nat,
            margins,
            direction,
            rule,
            prior_delta_natural=fitted.prior_delta_natural,
            evidence=evidence_mask(fitted.inputs),
        )
    table = table[table["scope"] != "any_beyond_margin"].copy()
    table["margin_set"] = name
    cell_keys = list(zip(table["time"], table["outcome"], strict=True))
    post_mean = delta_nat.mean(("chain", "draw")).to_series()
    post_sd = delta_nat.std(("chain", "draw"), ddof=1).to_series()
    table["delta_mean_natural"] = [post_mean.get(k, np.nan) for k in cell_keys]
    table["delta_sd_natural"] = [post_sd.get(k, np.nan) for k in cell_keys]
    table["margin_source"] = [margin_set[o][1] if o in margin_set else "" for o in table["outcome"]]
    evidence = fitted.inputs.evidence_by_cell.set_index(["time", "outcome"])["evidence"]
    table["evidence"] = [evidence.get(k, "joint") for k in cell_keys]
    for key, value in fit_info.items():
        if key != "seed":
            table[key] = value
    return table


def with_reference_decisions(table: pd.DataFrame, study_id: str, reference: str) -> pd.DataFrame:
    """The decision tables of every fit as ``sensitivity.csv`` (:data:`COLUMNS`), each row flagged when its
    decision differs from the reference configuration's for the same cell under the study margins."""
    table["study"] = study_id
    table["reference_configuration"] = reference
    ref = table[(table["configuration"] == reference) & (table["margin_set"] == "study")]
    ref_decision = dict(zip(zip(ref["scope"], ref["time"], ref["outcome"], strict=True), ref["decision"], strict=True))
    keys = zip(table["scope"], table["time"], table["outcome"], strict=True)
    table["decision_differs_from_reference"] = [
        d != ref_decision.get(k, d) for d, k in zip(table["decision"], keys, strict=True)
    ]
    return table[list(COLUMNS)]


def robustness_table(table: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Does "equivalent" survive the assumptions? Per cell and joint row, under the study's margins:
    P(equiv) of the reference fit, its smallest and largest value over all fits (with the fit that
    gives it), and how many fits call it equivalent. Fits that failed their diagnostics are counted
    and named, not dropped."""
    study = table[(table["margin_set"] == "study") & (table["scope"] != "any_beyond_margin")]
    rows = []
    for (scope, week, outcome), group in study.groupby(["scope", "time", "outcome"], sort=False, dropna=False):
        ref = group[group["configuration"] == reference]
        low = group.loc[group["prob_equivalence"].idxmin()]
        high = group.loc[group["prob_equivalence"].idxmax()]
        rows.append(
            {
                "scope": scope,
                "time": week,
                "outcome": outcome,
                "evidence": group["evidence"].iloc[0],
                "prob_equivalence_reference": float(ref["prob_equivalence"].iloc[0]) if len(ref) else float("nan"),
                "decision_reference": ref["decision"].iloc[0] if len(ref) else "",
                "prob_equivalence_min": float(low["prob_equivalence"]),
                "configuration_min": low["configuration"],
                "prob_equivalence_max": float(high["prob_equivalence"]),
                "configuration_max": high["configuration"],
                "n_fits": len(group),
                "n_equivalent": int((group["decision"] == "equivalent").sum()),
                "n_failed_diagnostics": int((group["diagnostics_status"] == "fail").sum()),
                "equivalent_in_every_fit": bool((group["decision"] == "equivalent").all()),
            }
        )
    return pd.DataFrame(rows)


def matching_robustness(run_folder: Path) -> tuple[pd.DataFrame, dict] | None:
    """The robustness table of the sweep beside a run (``<out>/<study>/sensitivity/``), when that sweep
    was made from the same study files and the same spec as the run; None otherwise.

    Both checks use the SHA-256 recorded in the two manifests, so a sweep of other data or of an edited
    spec is never shown as if it were this run's.
    """
    folder, _ = matching_sweep(run_folder, read_manifest(run_folder))
    robust_path = None if folder is None else published_file(folder / "robustness.csv")
    if robust_path is None:
        return None
    return pd.read_csv(robust_path), json.loads((folder / "manifest.json").read_text())
