"""Conventions of every decision quantity: the draws' dimensions, the decision events, the interval
convention and the decision rule.

Draws of ``delta`` = (change from baseline in the new arm) - (change from baseline in the reference
arm), natural units, are an :class:`xarray.DataArray` with dims ``("chain", "draw", "time",
"outcome")`` (a missing ``chain`` dim is read as a single chain). ``time`` coordinates are follow-up
times in weeks, ``outcome`` coordinates outcome names. For a ``"lower_is_better"`` outcome a
negative delta favours the new arm; for ``"higher_is_better"`` a positive one does. Each outcome has
an equivalence margin ``m > 0`` in natural units.

Every probability is a posterior (or prior) probability of an event, the share of draws in which
the event holds; names start with ``prob_``, nothing is a p-value. Each carries its Monte Carlo
standard error (ArviZ's ESS-based MCSE of the mean of the indicator draws).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SAMPLE_DIMS = ("chain", "draw")
CELL_DIMS = ("time", "outcome")
DIRECTIONS = ("lower_is_better", "higher_is_better")
# the per-cell events of the decision table, in column order
EVENTS = (
    "prob_equivalence",
    "prob_noninferiority",
    "prob_superiority",
    "prob_harm_beyond_margin",
    "prob_not_equivalent",
)
# ArviZ needs at least this many draws per chain for an MCSE / ESS
MIN_DRAWS_FOR_MCSE = 4


@dataclass(frozen=True)
class IntervalSpec:
    """The one interval convention used in every table, plot and report.

    Parameters
    ----------
    kind
        ``"eti"``: equal-tailed interval (posterior quantiles at (1 - prob)/2 and (1 + prob)/2);
        ``"hdi"``: highest-density interval (ArviZ ``az.hdi``, the shortest interval holding
        ``prob`` of the draws).
    prob
        Posterior probability inside the interval, strictly between 0 and 1.
    """

    kind: Literal["eti", "hdi"] = "eti"
    prob: float = 0.95

    def __post_init__(self) -> None:
        if self.kind not in ("eti", "hdi"):
            raise ValueError(f'interval kind must be "eti" or "hdi" (got {self.kind!r})')
        if not (0.0 < float(self.prob) < 1.0):
            raise ValueError(f"interval prob must be strictly between 0 and 1 (got {self.prob!r})")

    @property
    def label(self) -> str:
        """Words for captions, e.g. ``"95% equal-tailed interval"``."""
        name = "equal-tailed interval" if self.kind == "eti" else "highest-density interval"
        return f"{round(100 * self.prob, 6):g}% {name}"


@dataclass(frozen=True)
class DecisionRule:
    """The equivalence decision rule.

    ``"equivalent"`` when P(|delta| < m) >= threshold; ``"not equivalent"`` when
    P(|delta| >= m) >= threshold; otherwise ``"undecided"``.

    Parameters
    ----------
    threshold
        Posterior probability required for a decision, in (0.5, 1]; above 0.5 the two decisions
        cannot both hold.
    """

    threshold: float = 0.975

    def __post_init__(self) -> None:
        if not (0.5 < float(self.threshold) <= 1.0):
            raise ValueError(f"decision threshold must be in (0.5, 1] (got {self.threshold!r})")

    @property
    def text(self) -> str:
        """The rule in words, with the threshold value."""
        t = f"{self.threshold:g}"
        return (
            f'"equivalent" when P(|delta| < m) >= {t}; "not equivalent" when P(|delta| >= m) >= {t}; '
            'otherwise "undecided"'
        )

    def decide(self, prob_equivalence: float) -> str:
        """Apply the rule to a posterior probability of equivalence.

        Parameters
        ----------
        prob_equivalence
            P(|delta| < m) (or a joint version of it).

        Returns
        -------
        str
            ``"equivalent"``, ``"not equivalent"`` or ``"undecided"`` (also for NaN).
        """
        p = float(prob_equivalence)
        if p >= self.threshold:
            return "equivalent"
        if 1.0 - p >= self.threshold:
            return "not equivalent"
        return "undecided"
