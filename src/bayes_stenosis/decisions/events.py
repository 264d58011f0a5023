"""The one definition of the decision events and their scopes (cell, time point, all cells)."""

from __future__ import annotations

import xarray as xr

from bayes_stenosis.decisions.conventions import (
    CELL_DIMS,
)
from bayes_stenosis.decisions.draws import share_and_mcse


def scoped_event_indicators(
    delta: xr.DataArray, margin: xr.DataArray, sign: xr.DataArray, evidence: xr.DataArray | None = None
) -> dict[str, dict[str, xr.DataArray]]:
    """``scope -> event -> indicator draws``: the one definition of the decision events.

    Per cell (dims chain, draw, time, outcome): equivalence :math:`|\\delta| < m`, non-inferiority
    :math:`s\\delta > -m`, superiority :math:`s\\delta > 0`, harm beyond the margin
    :math:`s\\delta \\le -m` and non-equivalence (``s`` = +1 where higher is better, -1 where lower
    is). ``joint_time`` (all outcomes at a time) and ``joint_all`` (all cells) require the event in
    every cell; ``any_beyond_margin`` is "some cell is outside its margin" (its one event, ``prob_not_equivalent``:
    no equivalence event, whose probability would only repeat ``joint_all``). The decision table and the
    diagnostics of its probabilities (:mod:`bayes_stenosis.diagnostics`) both use these.

    ``evidence`` (boolean, dims time x outcome; default all true) marks the cells the study has
    evidence on. Joint events range over those cells only: a cell without evidence has only what
    the prior (and pooling with other outcomes) says, and must not decide a joint claim about
    what the trial showed. A time point without any evidence gets an all-false joint indicator;
    the decision table leaves its row out.
    """
    benefit = sign * delta  # > 0: the new arm is better
    cell = {
        "prob_equivalence": abs(delta) < margin,
        "prob_noninferiority": benefit > -margin,
        "prob_superiority": benefit > 0,
        "prob_harm_beyond_margin": benefit <= -margin,
        "prob_not_equivalent": abs(delta) >= margin,
    }

    if evidence is None:
        evidence = xr.ones_like(margin * sign * delta.isel(chain=0, draw=0, drop=True), dtype=bool)

    def joint(dims: tuple[str, ...]) -> dict[str, xr.DataArray]:
        out = {
            name: cell[name].where(evidence, True).all(dims)
            for name in ("prob_equivalence", "prob_noninferiority", "prob_superiority")
        }
        out["prob_harm_beyond_margin"] = ~out["prob_noninferiority"]
        out["prob_not_equivalent"] = ~out["prob_equivalence"]
        return out

    any_beyond = (cell["prob_not_equivalent"] & evidence).any(CELL_DIMS)
    return {
        "cell": cell,
        "joint_time": joint(("outcome",)),
        "joint_all": joint(CELL_DIMS),
        # its own event only: its complement is the all-cells P(equiv), already the joint_all row
        "any_beyond_margin": {"prob_not_equivalent": any_beyond},
    }


def scoped_probabilities(
    delta: xr.DataArray, margin: xr.DataArray, sign: xr.DataArray, evidence: xr.DataArray | None = None
) -> dict[str, dict[str, tuple[xr.DataArray, xr.DataArray]]]:
    """``scope -> event -> (prob, mcse)`` for the four scopes of the decision table."""
    indicators = scoped_event_indicators(delta, margin, sign, evidence)
    return {scope: _shares_and_mcses(inds) for scope, inds in indicators.items()}


def _shares_and_mcses(indicators: dict[str, xr.DataArray]) -> dict[str, tuple[xr.DataArray, xr.DataArray]]:
    """``event -> (prob, mcse)`` of one scope's indicators, in one call of :func:`share_and_mcse` (the same
    numbers as one call per event, without its fixed cost per call)."""
    names = list(indicators)
    prob, mcse = share_and_mcse(xr.concat([indicators[name] for name in names], dim="_event"))
    return {name: (prob.isel(_event=k, drop=True), mcse.isel(_event=k, drop=True)) for k, name in enumerate(names)}
