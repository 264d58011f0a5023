"""The decision table: per-cell and joint probabilities, prior column, MCSE and the decision."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_stenosis.decisions.conventions import (
    EVENTS,
    DecisionRule,
)
from bayes_stenosis.decisions.draws import (
    as_draws,
    direction_list,
    margin_vector,
    new_better_sign,
    outcome_names,
    same_cells,
)
from bayes_stenosis.decisions.events import scoped_probabilities


def decision_table(
    delta_natural: xr.DataArray,
    margins: Mapping[str, float],
    direction: Mapping[str, str],
    rule: DecisionRule,
    prior_delta_natural: xr.DataArray | None = None,
    evidence: xr.DataArray | None = None,
) -> pd.DataFrame:
    """Per-cell and joint posterior probabilities of equivalence etc., with MCSE and decisions.

    Parameters
    ----------
    delta_natural
        Posterior draws of delta, natural units, dims ``("chain", "draw", "time", "outcome")``.
    margins
        ``outcome -> m > 0`` (natural units).
    direction
        ``outcome -> "lower_is_better" | "higher_is_better"``.
    rule
        The decision rule applied to ``prob_equivalence``.
    prior_delta_natural
        Optional prior draws of delta with the same (time, outcome) cells (any number of chains
        and draws, e.g. a single chain); adds ``<prob>_prior`` and ``mcse_<prob>_prior`` columns.
    evidence
        Optional boolean (time, outcome) array: the cells the study has evidence on (default: all).
        A cell without evidence keeps its row, with decision ``"no evidence"``, and stays out of
        every joint row; a time point without evidence gets no joint row.

    Returns
    -------
    pandas.DataFrame
        Columns ``scope, time, outcome, direction, margin``, then for each of
        ``prob_equivalence`` = P(|delta| < m), ``prob_noninferiority`` = P(new arm not worse than
        the reference by m or more) (lower is better: P(delta < m); higher is better:
        P(delta > -m)), ``prob_superiority`` = P(new arm better) (lower is better: P(delta < 0);
        higher is better: P(delta > 0)), ``prob_harm_beyond_margin`` = P(new arm worse by m or
        more) = 1 - prob_noninferiority, ``prob_not_equivalent`` = P(|delta| >= m) =
        1 - prob_equivalence: the probability column and ``mcse_<prob>``; with prior draws also
        ``<prob>_prior`` and ``mcse_<prob>_prior``; then ``decision,
        decision_within_2_mcse_of_threshold, decision_threshold, decision_rule``.

        Rows (``scope``), all computed from the same draws:

        - ``"cell"``: one row per (time, outcome).
        - ``"joint_time"``: all outcomes at one time (``outcome = "all"``, ``margin`` NaN), e.g.
          joint equivalence = share of draws with |delta[t, o]| < m[o] for every outcome o;
          joint non-inferiority and superiority likewise. Their complements are
          ``prob_not_equivalent`` = P(at least one outcome outside its margin) and
          ``prob_harm_beyond_margin`` = P(at least one outcome worse by its margin or more).
        - ``"joint_all"``: the same over all cells (``time`` NaN, ``outcome = "all"``).
        - ``"any_beyond_margin"``: ``prob_not_equivalent`` = P(any cell has |delta| >= m), the row's
          one probability (prior: ``prob_not_equivalent_prior``); every other probability, ``prob_equivalence``
          included, is NaN (its complement, P(all cells inside), is the ``joint_all`` row's); no decision (``""``).

    Notes
    -----
    ``direction`` is the outcome's direction for cell rows, the common direction for joint rows
    (``"mixed"`` if outcomes differ). ``decision_within_2_mcse_of_threshold`` flags decisions
    whose ``prob_equivalence`` lies within 2 MCSE of a decision boundary (another seed could
    flip them). An indicator constant over all draws (a probability of exactly 0 or 1 in the
    sample) has no Monte Carlo variation to estimate: its MCSE is NaN and :func:`probability_text`
    shows it as a bound.
    """
    post = as_draws(delta_natural, "delta_natural")
    margin = margin_vector(post, margins)
    sign = new_better_sign(post, direction)
    directions = direction_list(post, direction)
    if evidence is not None:
        evidence = same_cells(post, evidence, ("delta_natural", "evidence")).astype(bool)
    has_evidence = np.ones((post.sizes["time"], post.sizes["outcome"]), bool) if evidence is None else evidence.values
    scoped = scoped_probabilities(post, margin, sign, evidence)
    prior_scoped = None
    if prior_delta_natural is not None:
        prior = same_cells(
            post, as_draws(prior_delta_natural, "prior_delta_natural"), ("delta_natural", "prior_delta_natural")
        )
        prior_scoped = scoped_probabilities(prior, margin, sign, evidence)
    rows = []
    for scope, sel, labels in _table_rows(post, directions, margin, has_evidence):
        row = labels | _probability_columns(scoped[scope], sel)
        if prior_scoped is not None:
            row |= _probability_columns(prior_scoped[scope], sel, suffix="_prior")
        if scope == "any_beyond_margin":
            fixed = ""
        elif scope == "cell" and not has_evidence[sel["time"], sel["outcome"]]:
            fixed = "no evidence"
        else:
            fixed = None
        row |= _decision_columns(rule, row["prob_equivalence"], row["mcse_prob_equivalence"], fixed)
        rows.append(row)
    return pd.DataFrame(rows)


def _table_rows(
    post: xr.DataArray, directions: list[str], margin: xr.DataArray, has_evidence: np.ndarray
) -> Iterator[tuple[str, dict[str, int], dict[str, Any]]]:
    """The table's rows in order, each as ``(scope, index into the scope's probabilities, label columns)``:
    the cells, one joint row per time with evidence, all cells jointly, any cell beyond its margin."""
    times = post.coords["time"].values.astype(float)
    outcomes = outcome_names(post)
    joint = directions[0] if len(set(directions)) == 1 else "mixed"

    def labels(scope: str, time: float, outcome: str, direction: str, m: float) -> dict[str, Any]:
        return {"scope": scope, "time": time, "outcome": outcome, "direction": direction, "margin": m}

    for i, t in enumerate(times):
        for j, o in enumerate(outcomes):
            yield "cell", {"time": i, "outcome": j}, labels("cell", float(t), o, directions[j], float(margin.values[j]))
    for i, t in enumerate(times):
        if has_evidence[i].any():
            yield "joint_time", {"time": i}, labels("joint_time", float(t), "all", joint, np.nan)
    yield "joint_all", {}, labels("joint_all", np.nan, "all", joint, np.nan)
    yield "any_beyond_margin", {}, labels("any_beyond_margin", np.nan, "all", joint, np.nan)


def _probability_columns(scoped: Mapping, sel: dict[str, int], suffix: str = "") -> dict[str, float]:
    """``<event><suffix>`` and ``mcse_<event><suffix>`` of every event at one row (NaN where the scope has
    no such event)."""
    columns = {}
    for name in EVENTS:
        prob, mcse = scoped.get(name, (None, None))
        columns[f"{name}{suffix}"] = np.nan if prob is None else float(prob.isel(sel))
        columns[f"mcse_{name}{suffix}"] = np.nan if mcse is None else float(mcse.isel(sel))
    return columns


def _decision_columns(rule: DecisionRule, prob: float, mcse: float, fixed: str | None) -> dict[str, Any]:
    """The rule's decision on ``prob`` (P(equiv)), whether it lies within 2 MCSE of a decision boundary, and
    the rule; ``fixed`` replaces the decision where the rule does not apply (no evidence, no decision)."""
    if fixed is not None:
        decision, near_boundary = fixed, False
    else:
        decision = rule.decide(prob)
        near = min(abs(prob - rule.threshold), abs((1.0 - prob) - rule.threshold))
        near_boundary = bool(near < 2 * mcse)  # False when MCSE is NaN
    return {
        "decision": decision,
        "decision_within_2_mcse_of_threshold": near_boundary,
        "decision_threshold": float(rule.threshold),
        "decision_rule": rule.text,
    }


def probability_text(prob: float, mcse: float, n_draws: int, digits: int = 3, threshold: float | None = None) -> str:
    """A probability for people: rounded, or a bound when no draw disagrees.

    A share of exactly 1 (or 0) over ``n_draws`` draws says only that the probability is above
    (below) about ``1 - 1/n_draws``; it is shown as ``"> 0.999"`` (``"< 0.001"``) at ``digits``
    decimals, never as a certain 1.000 with MCSE 0. NaN gives ``"-"``. With the decision
    ``threshold`` given, a probability that would round onto it without equalling it gets one more
    decimal (0.9748 beside "undecided" at 0.975, not 0.975); None or NaN (a row without a decision)
    leaves the rounding alone.
    """
    if prob != prob:
        return "-"
    if (
        threshold is not None
        and threshold == threshold
        and prob != threshold
        and (f"{prob:.{digits}f}" == f"{threshold:.{digits}f}")
    ):
        digits += 1
    step = 10.0**-digits
    constant = mcse != mcse and prob in (0.0, 1.0)
    text = f"{prob:.{digits}f}"
    # decided on the printed text: 0.9995 (5997 of 6000 draws) prints as 1.000 although it is not above 1 - step/2
    if constant or text in (f"{1:.{digits}f}", f"{0:.{digits}f}"):
        edge = max(step, 1.0 / max(n_draws, 1))
        if prob >= 0.5:
            return f"> {math.floor((1 - edge) / step) * step:.{digits}f}"
        return f"< {math.ceil(edge / step) * step:.{digits}f}"
    return text
