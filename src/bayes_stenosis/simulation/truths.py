"""The truth of a simulated trial (:class:`OutcomeTruth`, :class:`TrialTruth`) and :func:`default_truth`."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bayes_stenosis.simulation.covariance import latent_factors

REFERENCE_ARM = "reference_arm"
NEW_ARM = "new_arm"
ARMS = (REFERENCE_ARM, NEW_ARM)
INSTRUMENTS = ("VAS", "NRS", "ODI", "RMDQ", "QBPDS", "other")

_ID = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class OutcomeTruth:
    """The true distribution of one outcome (natural units; lower scores are better).

    Parameters
    ----------
    name
        Outcome id, used as the key in ``study.toml`` and the CSVs (letters, digits, ``_``).
    instrument
        One of ``VAS NRS ODI RMDQ QBPDS other``.
    scale_min, scale_max
        The instrument's range.
    baseline_mean
        :math:`\\mu_o`, the mean baseline score (both arms; randomisation).
    sd
        :math:`\\sigma_o`, the SD of the score at baseline and at every follow-up time.
    rho
        :math:`\\rho_o`, the correlation between the baseline and a follow-up score.
    margin
        Equivalence margin (natural units) written to ``study.toml``.
    unit
        Unit written to ``study.toml``.
    """

    name: str
    instrument: str
    scale_min: float
    scale_max: float
    baseline_mean: float
    sd: float
    rho: float
    margin: float
    unit: str = "points"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _ID.match(self.name):
            raise ValueError(f"outcome name must be letters, digits and '_' (got {self.name!r})")
        if self.instrument not in INSTRUMENTS:
            raise ValueError(
                f"outcome {self.name}: instrument must be one of {', '.join(INSTRUMENTS)} (got {self.instrument!r})"
            )
        for key in ("scale_min", "scale_max", "baseline_mean", "sd", "rho", "margin"):
            value = getattr(self, key)
            if isinstance(value, bool) or not math.isfinite(float(value)):
                raise ValueError(f"outcome {self.name}: {key} must be a finite number (got {value!r})")
            object.__setattr__(self, key, float(value))
        if not self.scale_max > self.scale_min:
            raise ValueError(f"outcome {self.name}: scale_max must be greater than scale_min")
        if not self.scale_min <= self.baseline_mean <= self.scale_max:
            raise ValueError(f"outcome {self.name}: baseline_mean must lie on the scale")
        if not self.sd > 0:
            raise ValueError(f"outcome {self.name}: sd must be > 0 (got {self.sd:g})")
        if not -1 < self.rho < 1:
            raise ValueError(f"outcome {self.name}: rho must be in (-1, 1) (got {self.rho:g})")
        if not self.margin > 0:
            raise ValueError(f"outcome {self.name}: margin must be > 0 (got {self.margin:g})")
        if not self.unit:
            raise ValueError(f"outcome {self.name}: unit must not be empty")


def _float_matrix(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    arr = np.array(value, dtype=float)  # a copy: the truth owns its arrays
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (got {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    arr.setflags(write=False)
    return arr


def _checked_outcomes(outcomes: Sequence[OutcomeTruth]) -> tuple[OutcomeTruth, ...]:
    """The outcomes as a tuple: at least one, each an :class:`OutcomeTruth`, names distinct."""
    outcomes = tuple(outcomes)
    if not outcomes or not all(isinstance(o, OutcomeTruth) for o in outcomes):
        raise ValueError("outcomes must be a non-empty sequence of OutcomeTruth")
    names = [o.name for o in outcomes]
    if len(set(names)) != len(names):
        raise ValueError(f"outcome names must be distinct (got {names})")
    return outcomes


def _checked_follow_up(follow_up: Sequence[float]) -> tuple[float, ...]:
    """The follow-up times as floats: at least one, finite, after the baseline and strictly increasing."""
    times = tuple(float(t) for t in follow_up)
    if not times:
        raise ValueError("follow_up needs at least one time")
    if not all(math.isfinite(t) and t > 0 for t in times):
        raise ValueError("follow_up times must be finite and after the baseline (0)")
    if any(b <= a for a, b in zip(times, times[1:], strict=False)):
        raise ValueError("follow_up times must be strictly increasing")
    return times


def _checked_n_per_arm(n_per_arm: Sequence[int]) -> tuple[int, int]:
    """``(reference, new)`` as two Python integers of at least 2 (a bool is not an integer here)."""
    n = tuple(n_per_arm)
    if len(n) != 2 or not all(isinstance(k, int | np.integer) and not isinstance(k, bool) and k >= 2 for k in n):
        raise ValueError(f"n_per_arm must be two integers >= 2 (got {n_per_arm!r})")
    return int(n[0]), int(n[1])


def _checked_outcome_corr(value: Any, n_outcomes: int) -> np.ndarray:
    """A read-only correlation matrix: square of the outcomes' size, symmetric, unit diagonal, entries in [-1, 1]."""
    corr = _float_matrix(value, (n_outcomes,) * 2, "outcome_corr")
    if not np.allclose(corr, corr.T, rtol=0, atol=1e-12):
        raise ValueError("outcome_corr must be symmetric")
    if not np.allclose(np.diag(corr), 1.0, rtol=0, atol=1e-12) or np.any(np.abs(corr) > 1):
        raise ValueError("outcome_corr must have a unit diagonal and entries in [-1, 1]")
    return corr


def _checked_time_corr(value: Any) -> float:
    """``time_corr`` as a float in [-1, 1]."""
    if isinstance(value, bool) or not -1 <= float(value) <= 1:
        raise ValueError(f"time_corr must be in [-1, 1] (got {value!r})")
    return float(value)


def _checked_dropout(value: Any) -> float:
    """``dropout`` as a float in [0, 1)."""
    if isinstance(value, bool) or not 0 <= float(value) < 1:
        raise ValueError(f"dropout must be in [0, 1) (got {value!r})")
    return float(value)


def _checked_round_to(value: Any) -> float | None:
    """``round_to`` as None or a finite float > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not (math.isfinite(float(value)) and float(value) > 0):
        raise ValueError(f"round_to must be None or > 0 (got {value!r})")
    return float(value)


def _checked_clip(value: Any) -> bool:
    """``clip`` as a Python bool (numpy's bool accepted, no other value)."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"clip must be True or False (got {value!r})")
    return bool(value)


@dataclass(frozen=True, eq=False)
class TrialTruth:
    """The truth of a simulated two-arm trial (see the package docstring for the maths).

    Parameters
    ----------
    outcomes
        One :class:`OutcomeTruth` per outcome (order = column order of the matrices below).
    follow_up
        Follow-up times in weeks, increasing and after the baseline (time 0).
    change_reference
        ``(time, outcome)``: the true mean change from baseline in the reference arm,
        :math:`c_{\\text{ref},t,o}`, natural units.
    delta
        ``(time, outcome)``: the true difference in mean change, new minus reference, natural
        units (negative favours the new arm: lower is better).
    n_per_arm
        ``(reference, new)`` patients randomised.
    outcome_corr
        ``(outcome, outcome)``: :math:`R`, the correlation between outcomes at the same time.
    time_corr
        :math:`\\tau`, the correlation of the innovations :math:`u` (the part of a follow-up score
        not explained by the baseline) between two follow-up times.
    dropout
        Probability that a patient misses a follow-up visit (MCAR), per patient x time.
    round_to
        Round every score to a multiple of this (``1.0`` mimics a questionnaire); ``None`` keeps
        scores continuous.
    clip
        Clip scores to the scale range. Biases the means (see :func:`expected_scores`).
    """

    outcomes: tuple[OutcomeTruth, ...]
    follow_up: tuple[float, ...]
    change_reference: np.ndarray
    delta: np.ndarray
    n_per_arm: tuple[int, int]
    outcome_corr: np.ndarray
    time_corr: float = 0.7
    dropout: float = 0.0
    round_to: float | None = None
    clip: bool = False

    def __post_init__(self) -> None:
        outcomes = _checked_outcomes(self.outcomes)
        times = _checked_follow_up(self.follow_up)
        shape = (len(times), len(outcomes))
        checked = {
            "outcomes": outcomes,
            "follow_up": times,
            "change_reference": _float_matrix(self.change_reference, shape, "change_reference"),
            "delta": _float_matrix(self.delta, shape, "delta"),
            "n_per_arm": _checked_n_per_arm(self.n_per_arm),
            "outcome_corr": _checked_outcome_corr(self.outcome_corr, len(outcomes)),
            "time_corr": _checked_time_corr(self.time_corr),
            "dropout": _checked_dropout(self.dropout),
            "round_to": _checked_round_to(self.round_to),
            "clip": _checked_clip(self.clip),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        latent_factors(self)  # refuses a truth that cannot be generated

    @property
    def outcome_names(self) -> list[str]:
        return [o.name for o in self.outcomes]

    @property
    def times(self) -> list[float]:
        """All measurement times: the baseline 0 and the follow-up times."""
        return [0.0, *self.follow_up]

    def change(self, arm: str) -> np.ndarray:
        """True mean change ``(time, outcome)`` of ``arm`` (before rounding/clipping)."""
        if arm == REFERENCE_ARM:
            return np.array(self.change_reference)
        if arm == NEW_ARM:
            return self.change_reference + self.delta
        raise ValueError(f"arm must be {REFERENCE_ARM!r} or {NEW_ARM!r} (got {arm!r})")

    def n(self, arm: str) -> int:
        """Patients randomised to ``arm``."""
        if arm not in ARMS:
            raise ValueError(f"arm must be {REFERENCE_ARM!r} or {NEW_ARM!r} (got {arm!r})")
        return self.n_per_arm[ARMS.index(arm)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; :meth:`from_dict` inverts it exactly."""
        return {
            "outcomes": [asdict(o) for o in self.outcomes],
            "follow_up": list(self.follow_up),
            "change_reference": self.change_reference.tolist(),
            "delta": self.delta.tolist(),
            "n_per_arm": list(self.n_per_arm),
            "outcome_corr": self.outcome_corr.tolist(),
            "time_corr": self.time_corr,
            "dropout": self.dropout,
            "round_to": self.round_to,
            "clip": self.clip,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialTruth:
        """Rebuild a truth from :meth:`to_dict` output."""
        data = dict(data)
        outcomes = tuple(OutcomeTruth(**o) for o in data.pop("outcomes"))
        return cls(outcomes=outcomes, **data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TrialTruth):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # holds arrays


_PAIN_DISABILITY = 0.5
_QBPDS_OTHERS = 0.6
_ODI_RMDQ = 0.75


def default_truth(
    *,
    n_per_arm: tuple[int, int] = (20, 20),
    delta: float | Sequence[float] | np.ndarray = 0.0,
    change_reference: float | Sequence[float] | np.ndarray | None = None,
    follow_up: tuple[float, ...] = (4.0, 8.0),
    outcomes: Sequence[OutcomeTruth] | None = None,
    outcome_corr: np.ndarray | None = None,
    time_corr: float = 0.7,
    dropout: float = 0.0,
    round_to: float | None = None,
    clip: bool = False,
) -> TrialTruth:
    """A truth shaped like the flagship trial (Farpour 2022): four outcomes, 4 and 8 weeks, 20/20.

    ========  =======  ========  =====  =====  ======  =====================
    outcome   scale    baseline  SD     rho    margin  unit
    ========  =======  ========  =====  =====  ======  =====================
    VAS       0-100    65        20     0.3    15      mm
    ODI       0-100    45        16     0.6    10      points
    QBPDS     0-100    50        20     0.6    15      points
    RMDQ      0-24     14        5      0.5    5       points
    ========  =======  ========  =====  =====  ======  =====================

    Reference-arm mean change :math:`-0.8\\sigma_o` at 4 weeks and :math:`-1.0\\sigma_o` at 8
    weeks; ``delta`` 0 (the two treatments are exactly equivalent); outcome correlation
    ODI-RMDQ 0.75, QBPDS with every other outcome 0.6, pain (VAS) with ODI and RMDQ 0.5;
    ``time_corr`` 0.7. Baseline means and SDs are typical of lumbar stenosis trials (SDs as the
    flagship's ``reference_sd``); the margins are the flagship's.

    Every argument overrides the default. ``delta`` and ``change_reference`` may be a scalar or
    anything broadcastable to ``(time, outcome)`` (natural units). With other ``follow_up`` times
    than two, or other ``outcomes``, give ``change_reference`` (and ``outcome_corr``) explicitly.
    Scores are continuous and unclipped by default, so the truth holds exactly; pass ``clip=True``
    (and e.g. ``round_to=1.0``) for questionnaire-like data, which the ``ipd`` level needs.
    """
    if outcomes is None:
        outcomes = _flagship_outcomes()
        if outcome_corr is None:
            outcome_corr = _flagship_outcome_corr()
    outcomes = tuple(outcomes)
    if outcome_corr is None:
        raise ValueError("with custom outcomes, give outcome_corr too")
    shape = (len(follow_up), len(outcomes))
    if change_reference is None:
        change_reference = _default_change_reference(follow_up, outcomes)
    return TrialTruth(
        outcomes=outcomes,
        follow_up=tuple(follow_up),
        change_reference=np.broadcast_to(np.asarray(change_reference, dtype=float), shape),
        delta=np.broadcast_to(np.asarray(delta, dtype=float), shape),
        n_per_arm=n_per_arm,
        outcome_corr=outcome_corr,
        time_corr=time_corr,
        dropout=dropout,
        round_to=round_to,
        clip=clip,
    )


def _flagship_outcomes() -> tuple[OutcomeTruth, ...]:
    """The four outcomes of :func:`default_truth` (its table), in the order VAS, ODI, QBPDS, RMDQ."""
    return (
        OutcomeTruth("VAS", "VAS", 0, 100, 65, 20, 0.3, 15, unit="mm"),
        OutcomeTruth("ODI", "ODI", 0, 100, 45, 16, 0.6, 10),
        OutcomeTruth("QBPDS", "QBPDS", 0, 100, 50, 20, 0.6, 15),
        OutcomeTruth("RMDQ", "RMDQ", 0, 24, 14, 5, 0.5, 5),
    )


def _flagship_outcome_corr() -> np.ndarray:
    """The correlation between the flagship outcomes at one visit: ODI-RMDQ 0.75, QBPDS with every
    other outcome 0.6, pain (VAS) with ODI and RMDQ 0.5."""
    p, q, d = _PAIN_DISABILITY, _QBPDS_OTHERS, _ODI_RMDQ
    #                 VAS ODI QBPDS RMDQ
    return np.array(
        [
            [1.0, p, q, p],
            [p, 1.0, q, d],
            [q, q, 1.0, q],
            [p, d, q, 1.0],
        ]
    )


def _default_change_reference(follow_up: tuple[float, ...], outcomes: tuple[OutcomeTruth, ...]) -> np.ndarray:
    """The reference arm's mean change of :func:`default_truth`: -0.8 SD at the first follow-up, -1.0 SD at
    the second (two follow-up times only)."""
    if len(follow_up) != 2:
        raise ValueError("with other than two follow-up times, give change_reference too")
    sd = np.array([o.sd for o in outcomes])
    return np.array([-0.8, -1.0])[:, None] * sd[None, :]
