"""The answer first: one row per follow-up cell (delta with its interval in natural units, P(equiv), the
prior's P(equiv), the decision), then the joint rows; with a sensitivity sweep beside the run, the range
of P(equiv) over its fits. The report's first table, what ``summarize`` prints and ``--markdown`` writes.
"""

from __future__ import annotations

import math

import pandas as pd

from bayes_stenosis.decisions import probability_text

#: Headline columns (keys of :func:`headline_table`) and their headers.
HEADLINE_LABELS = {
    "week": "week",
    "outcome": "outcome",
    "margin": "margin",
    "delta": "δ mean ({interval})",
    "p_equiv": "P(equiv)",
    "prior_p_equiv": "prior P(equiv)",
    "sensitivity": "P(equiv) range over the sensitivity fits (fits equivalent)",
    "decision": "decision",
}


def decimals_for(margin: float) -> int:
    """Decimals of a natural-unit number on a scale whose margin is ``margin``: two significant digits
    of the margin (15 mm -> 1 decimal, 5 points -> 2, 0.8 -> 3)."""
    if not (margin > 0 and math.isfinite(margin)):
        return 1
    return max(0, 2 - math.floor(math.log10(margin)))


def interval_label(manifest: dict) -> str:
    """``"95 % ETI"`` from the run's interval convention."""
    interval = manifest["interval"]
    return f"{interval['prob'] * 100:.0f} % {interval['kind'].upper()}"


def arm_difference(manifest: dict) -> str:
    """``"<new arm> minus <reference arm>"``: the treatment difference the run's delta measures."""
    arms = manifest["arms"]
    return f"{arms['new']} minus {arms['reference']}"


def delta_text(mean: float, lower: float, upper: float, unit: str, decimals: int) -> str:
    """``"-0.9 mm (-9.1 to 7.3)"``: the posterior mean and interval of delta, natural units."""
    unit = f" {unit}" if unit else ""
    return f"{mean:.{decimals}f}{unit} ({lower:.{decimals}f} to {upper:.{decimals}f})"


def sensitivity_text(row: pd.Series | None) -> str:
    """``"0.660-0.998 (11/28)"`` from a row of the sweep's ``robustness.csv``: the lowest and highest
    P(equiv) over the fits, and how many of them call it equivalent."""
    if row is None:
        return ""
    low, high = float(row["prob_equivalence_min"]), float(row["prob_equivalence_max"])
    return f"{low:.3f}-{high:.3f} ({int(row['n_equivalent'])}/{int(row['n_fits'])})"


def robustness_row(robustness: pd.DataFrame | None, scope: str, time: float, outcome: str) -> pd.Series | None:
    if robustness is None:
        return None
    rows = robustness[(robustness["scope"] == scope) & (robustness["outcome"].astype(str) == str(outcome))]
    if scope != "joint_all":
        rows = rows[(rows["time"] - time).abs() < 1e-9]
    return rows.iloc[0] if len(rows) else None


def headline_table(
    decisions: pd.DataFrame,
    contrasts: pd.DataFrame,
    manifest: dict,
    robustness: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The headline: per cell, then per time point (all outcomes) and over all cells.

    Parameters
    ----------
    decisions, contrasts
        The run's ``decisions.csv`` and ``contrasts.csv``.
    manifest
        The run's manifest (units, interval convention, draw counts).
    robustness
        The sensitivity sweep's ``robustness.csv`` (adds the ``sensitivity`` column), if any.

    Returns
    -------
    pandas.DataFrame
        Text columns :data:`HEADLINE_LABELS` (``sensitivity`` only with ``robustness``) and ``scope``.
        Probabilities are :func:`~bayes_stenosis.decisions.probability_text` (a bound where no draw
        disagrees); the "some cell beyond its margin" row is the complement of the all-cells row and
        is left out.
    """
    sampler = manifest.get("sampler", {})
    n_post = int(sampler.get("chains", 0)) * int(sampler.get("draws", 0))
    n_prior = int(sampler.get("prior_draws_decisions", 0)) or n_post
    units = manifest.get("units", {})
    con = contrasts.set_index([contrasts["time"].round(9), contrasts["outcome"].astype(str)])
    rows = []
    for rec in decisions.to_dict("records"):
        scope = rec.get("scope", "cell")
        if scope == "any_beyond_margin":
            continue
        time, outcome = rec["time"], str(rec["outcome"])
        row = {"scope": scope, "week": "all" if time != time else f"{time:g}"}
        row["outcome"] = {"cell": outcome, "joint_time": "all outcomes", "joint_all": "all cells"}[scope]
        margin, delta = rec.get("margin", float("nan")), ""
        unit = units.get(outcome, "")
        if scope == "cell" and (round(time, 9), outcome) in con.index:
            c = con.loc[(round(time, 9), outcome)]
            decimals = decimals_for(margin)
            delta = delta_text(c["mean_natural"], c["lower_natural"], c["upper_natural"], unit, decimals)
        row["margin"] = "" if margin != margin else f"±{margin:g}"  # its unit is the delta's
        row["delta"] = delta
        row["p_equiv"] = probability_text(
            rec["prob_equivalence"],
            rec.get("mcse_prob_equivalence", math.nan),
            n_post,
            threshold=rec.get("decision_threshold"),
        )
        prior = rec.get("prob_equivalence_prior", math.nan)
        row["prior_p_equiv"] = probability_text(prior, rec.get("mcse_prob_equivalence_prior", math.nan), n_prior)
        if robustness is not None:
            row["sensitivity"] = sensitivity_text(robustness_row(robustness, scope, time, outcome))
        row["decision"] = str(rec.get("decision", ""))
        rows.append(row)
    columns = ["scope", *[k for k in HEADLINE_LABELS if k != "sensitivity" or robustness is not None]]
    return pd.DataFrame(rows, columns=columns)


def headline_labels(manifest: dict) -> dict[str, str]:
    """Header text of each headline column (the interval convention filled in)."""
    return {k: v.format(interval=interval_label(manifest)) for k, v in HEADLINE_LABELS.items()}


#: What the ``any_beyond_margin`` row of ``decisions.csv`` is the probability of, as every output words it.
BEYOND_LABEL = "P(some cell with evidence lies beyond its margin)"


def beyond_text(row: pd.Series | dict, manifest: dict) -> str:
    """The ``any_beyond_margin`` row's probability as printed (a bound where no draw disagrees), with its
    MCSE and the prior's probability: ``0.074 (MCSE 0.0039; prior 0.352)``."""
    sampler = manifest.get("sampler", {})
    n_post = int(sampler.get("chains", 0)) * int(sampler.get("draws", 0))
    n_prior = int(sampler.get("prior_draws_decisions", 0)) or n_post
    mcse = row.get("mcse_prob_not_equivalent", math.nan)
    text = probability_text(row["prob_not_equivalent"], mcse, n_post)
    extras = [f"MCSE {mcse:.4f}"] if mcse == mcse else []
    prior = row.get("prob_not_equivalent_prior", math.nan)
    if prior == prior:
        extras.append(f"prior {probability_text(prior, row.get('mcse_prob_not_equivalent_prior', math.nan), n_prior)}")
    return text + (f" ({'; '.join(extras)})" if extras else "")


def headline_markdown(table: pd.DataFrame, manifest: dict, rule_text: str, notes: list[str] | None = None) -> str:
    """The headline as a Markdown table with its headers in words, then the rule, the contrast and
    ``notes`` (e.g. the any-cell line and the sensitivity note), one paragraph each."""
    labels = headline_labels(manifest)
    columns = [c for c in table.columns if c != "scope"]
    lines = ["| " + " | ".join(labels[c] for c in columns) + " |", "|" + "---|" * len(columns)]
    for rec in table[columns].to_dict("records"):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in rec.values()) + " |")
    arms = manifest["arms"]
    note = (
        f"δ = change from baseline with {arms['new']} minus with {arms['reference']} (natural units); "
        f"interval: {interval_label(manifest)}."
    )
    paragraphs = [note, f"Rule: {rule_text}", *(notes or [])]
    return "\n".join([*lines, "", "\n\n".join(paragraphs)]) + "\n"
