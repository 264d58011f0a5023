r"""Seeded simulation of a two-arm trial from a known truth, and every evidence level from it.

One simulated trial (patients with a baseline and follow-up scores on several outcomes) yields
each evidence level of DESIGN section 2 from the *same* patients:

======================  ========================================================================
level                   what :func:`write_study` writes
======================  ========================================================================
``ipd``                 ``ipd.csv``: the patient-level scores (empty value = missed visit)
``arm_summary``         ``arm_summaries.csv``: n, mean, SD of the *scores* (baseline, follow-up)
``arm_summary_change``  ``arm_summaries.csv``: n, mean, SD of the *change* from baseline
``contrast``            ``contrasts.csv``: new minus reference with CI, SE, p and df
``threshold``           ``thresholds.csv``: "P<alpha" / "P>alpha" between and within the arms
======================  ========================================================================

so a model fitted to any level can be compared with the truth and with the fits to the other
levels. Every simulated study folder says so (``study.simulated = true``, "SIMULATED" in the title,
citation and every ``source``) and carries ``truth.json`` (the truth, the seed and the package
version) beside ``study.toml``.

Generative model
----------------
Arms :math:`a \in \{\text{ref}, \text{new}\}` with :math:`n_a` patients, outcomes
:math:`o = 1..O` and follow-up times :math:`t = 1..T` (time 0 is the baseline). Per outcome the
truth gives the baseline mean :math:`\mu_o`, the SD :math:`\sigma_o` (the same at every time) and
the baseline-follow-up correlation :math:`\rho_o`; :math:`R` is the correlation between outcomes
at the same time, :math:`\tau` the time correlation (``time_corr``). The true mean changes are

.. math::

    c_{\text{ref},t,o} = \text{change\_reference}[t, o], \qquad
    c_{\text{new},t,o} = \text{change\_reference}[t, o] + \text{delta}[t, o].

For patient :math:`i` in arm :math:`a`, independently across patients,

.. math::

    z_i \sim N_O(0, R), \qquad
    u_i = (u_{i1}, \dots, u_{iT}) \sim N_{TO}(0, P \otimes C), \qquad z_i \perp u_i,

    b_{io} = \mu_o + \sigma_o z_{io}, \qquad
    y_{ito} = \mu_o + c_{a,t,o}
              + \sigma_o \left(\rho_o z_{io} + \sqrt{1 - \rho_o^2}\, u_{ito}\right),

where :math:`P` is the :math:`T \times T` matrix with 1 on the diagonal and :math:`\tau` elsewhere,
and :math:`C` is the outcome correlation of the innovations,

.. math::

    C_{oo'} = R_{oo'} \frac{1 - \rho_o \rho_{o'}}{\sqrt{(1 - \rho_o^2)(1 - \rho_{o'}^2)}},

chosen so that the scores at *every* time, follow-up included, have between-outcome correlation
:math:`R` (when all :math:`\rho_o` are equal, :math:`C = R`). Hence, exactly:

* :math:`E[b_{io}] = \mu_o`, :math:`E[y_{ito} - b_{io}] = c_{a,t,o}` (the true mean change), so
  the true difference in mean change is ``delta`` and :math:`\operatorname{SD}(b) =
  \operatorname{SD}(y_t) = \sigma_o`;
* :math:`\operatorname{corr}(b_o, y_{to}) = \rho_o`,
  :math:`\operatorname{corr}(b_o, b_{o'}) = \operatorname{corr}(y_{to}, y_{to'}) = R_{oo'}`,
  :math:`\operatorname{corr}(b_o, y_{to'}) = \rho_{o'} R_{oo'}`;
* :math:`\operatorname{corr}(y_{to}, y_{t'o'}) = \rho_o\rho_{o'}R_{oo'} + \tau(1 - \rho_o\rho_{o'})
  R_{oo'}` for :math:`t \ne t'` (:math:`\rho_o^2 + \tau(1 - \rho_o^2)` for the same outcome);
* the change :math:`d_{to} = y_{to} - b_{o}` has SD :math:`\sigma_o\sqrt{2(1 - \rho_o)}`.

:func:`score_correlation` and :func:`change_covariance` return these matrices. A truth whose
:math:`C` (or :math:`P \otimes C`) is not positive semi-definite cannot be generated and is refused.

Then, in this order: scores (baseline included) are rounded to multiples of ``round_to``
(:math:`\text{round}(y / h)\,h`), clipped to ``[scale_min, scale_max]`` when ``clip`` is set, and
each patient misses each follow-up visit with probability ``dropout`` independently (MCAR): all
outcomes of a missed visit are missing; baselines are never missing.

**Clipping biases the means and SDs** (a floor or ceiling pulls the scores inward), so the
observed mean change no longer equals ``change_reference`` (+ ``delta``). :func:`expected_scores`
gives the exact expectation after rounding and clipping; parameter-recovery tests that compare
with the truth itself should keep ``clip=False`` (the default). The loader refuses patient-level
scores outside the scale range, so writing the ``ipd`` level needs ``clip=True`` unless every score
happens to fall inside it.

Random numbers come from ``numpy.random.SeedSequence(seed)`` with one independent child stream
per arm and one for dropout, so the same seed gives the same numbers and changing ``delta``,
``dropout``, rounding, clipping or the size of the new arm leaves the reference arm's patients
(and all standardised draws) unchanged: common random numbers across scenarios.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from bayes_stenosis.study import EVIDENCE_FILES, SCHEMAS, StudyFile

__all__ = [
    "ARMS",
    "INSTRUMENTS",
    "LEVELS",
    "NEW_ARM",
    "REFERENCE_ARM",
    "OutcomeTruth",
    "TrialTruth",
    "change_covariance",
    "contrasts_from_patients",
    "default_truth",
    "expected_scores",
    "read_truth",
    "score_correlation",
    "simulate_patients",
    "summarise_arms",
    "thresholds_from_patients",
    "write_study",
]

REFERENCE_ARM = "reference_arm"
NEW_ARM = "new_arm"
ARMS = (REFERENCE_ARM, NEW_ARM)
INSTRUMENTS = ("VAS", "NRS", "ODI", "RMDQ", "QBPDS", "other")
LEVELS = ("ipd", "arm_summary", "arm_summary_change", "contrast", "threshold")
TRUTH_FILE = "truth.json"

_ID = re.compile(r"^[A-Za-z0-9_]+$")
_STUDY_ID = re.compile(r"^[a-z0-9_]+$")
_PSD_TOL = 1e-10


# ---------------------------------------------------------------------------------------------
# The truth
# ---------------------------------------------------------------------------------------------


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


@dataclass(frozen=True, eq=False)
class TrialTruth:
    """The truth of a simulated two-arm trial (see the module docstring for the maths).

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
        outcomes = tuple(self.outcomes)
        if not outcomes or not all(isinstance(o, OutcomeTruth) for o in outcomes):
            raise ValueError("outcomes must be a non-empty sequence of OutcomeTruth")
        names = [o.name for o in outcomes]
        if len(set(names)) != len(names):
            raise ValueError(f"outcome names must be distinct (got {names})")
        object.__setattr__(self, "outcomes", outcomes)
        times = tuple(float(t) for t in self.follow_up)
        if not times:
            raise ValueError("follow_up needs at least one time")
        if not all(math.isfinite(t) and t > 0 for t in times):
            raise ValueError("follow_up times must be finite and after the baseline (0)")
        if any(b <= a for a, b in zip(times, times[1:], strict=False)):
            raise ValueError("follow_up times must be strictly increasing")
        object.__setattr__(self, "follow_up", times)
        shape = (len(times), len(outcomes))
        object.__setattr__(
            self,
            "change_reference",
            _float_matrix(self.change_reference, shape, "change_reference"),
        )
        object.__setattr__(self, "delta", _float_matrix(self.delta, shape, "delta"))
        n = tuple(self.n_per_arm)
        if len(n) != 2 or not all(isinstance(k, int | np.integer) and not isinstance(k, bool) and k >= 2 for k in n):
            raise ValueError(f"n_per_arm must be two integers >= 2 (got {self.n_per_arm!r})")
        object.__setattr__(self, "n_per_arm", (int(n[0]), int(n[1])))
        corr = _float_matrix(self.outcome_corr, (len(outcomes),) * 2, "outcome_corr")
        if not np.allclose(corr, corr.T, rtol=0, atol=1e-12):
            raise ValueError("outcome_corr must be symmetric")
        if not np.allclose(np.diag(corr), 1.0, rtol=0, atol=1e-12) or np.any(np.abs(corr) > 1):
            raise ValueError("outcome_corr must have a unit diagonal and entries in [-1, 1]")
        object.__setattr__(self, "outcome_corr", corr)
        if isinstance(self.time_corr, bool) or not -1 <= float(self.time_corr) <= 1:
            raise ValueError(f"time_corr must be in [-1, 1] (got {self.time_corr!r})")
        object.__setattr__(self, "time_corr", float(self.time_corr))
        if isinstance(self.dropout, bool) or not 0 <= float(self.dropout) < 1:
            raise ValueError(f"dropout must be in [0, 1) (got {self.dropout!r})")
        object.__setattr__(self, "dropout", float(self.dropout))
        if self.round_to is not None:
            if isinstance(self.round_to, bool) or not (
                math.isfinite(float(self.round_to)) and float(self.round_to) > 0
            ):
                raise ValueError(f"round_to must be None or > 0 (got {self.round_to!r})")
            object.__setattr__(self, "round_to", float(self.round_to))
        if not isinstance(self.clip, bool | np.bool_):
            raise ValueError(f"clip must be True or False (got {self.clip!r})")
        object.__setattr__(self, "clip", bool(self.clip))
        _latent_factors(self)  # refuses a truth that cannot be generated

    # --- convenience ------------------------------------------------------------------------
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

    # --- serialisation ----------------------------------------------------------------------
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


def _psd_sqrt(matrix: np.ndarray, what: str) -> np.ndarray:
    """A factor ``L`` with ``L @ L.T == matrix``, refusing matrices that are not PSD."""
    eig = np.linalg.eigvalsh(matrix)
    if eig.min() < -_PSD_TOL:
        raise ValueError(f"{what} is not positive semi-definite (smallest eigenvalue {eig.min():.3g})")
    try:
        return np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:  # singular but PSD (e.g. time_corr = 1)
        values, vectors = np.linalg.eigh(matrix)
        return vectors * np.sqrt(np.clip(values, 0, None))


def _innovation_outcome_corr(truth: TrialTruth) -> np.ndarray:
    rho = np.array([o.rho for o in truth.outcomes])
    s = np.sqrt(1 - rho**2)
    return truth.outcome_corr * (1 - np.outer(rho, rho)) / np.outer(s, s)


def _time_matrix(truth: TrialTruth) -> np.ndarray:
    n_t = len(truth.follow_up)
    return np.full((n_t, n_t), truth.time_corr) + (1 - truth.time_corr) * np.eye(n_t)


def _latent_factors(truth: TrialTruth) -> tuple[np.ndarray, np.ndarray]:
    """Factors of R (baseline) and of P (x) C (innovations), or ValueError."""
    factor_r = _psd_sqrt(truth.outcome_corr, "outcome_corr")
    c = _innovation_outcome_corr(truth)
    if np.any(np.abs(c) > 1 + 1e-12):
        raise ValueError(
            "this outcome_corr and these rho values cannot hold together: the innovation "
            "correlation R[o,o'](1-rho_o rho_o')/sqrt((1-rho_o^2)(1-rho_o'^2)) exceeds 1"
        )
    factor_c = _psd_sqrt(
        c,
        "the innovation correlation "
        "C[o,o'] = R[o,o'](1-rho_o rho_o')/sqrt((1-rho_o^2)(1-rho_o'^2)) "
        "(outcome_corr is incompatible with the rho values)",
    )
    factor_p = _psd_sqrt(_time_matrix(truth), "the time correlation matrix (time_corr too negative)")
    return factor_r, np.kron(factor_p, factor_c)


def score_correlation(truth: TrialTruth) -> np.ndarray:
    """The exact correlation matrix of one patient's scores before rounding and clipping.

    Index ``k * O + o`` for time index ``k`` (0 = baseline, then the follow-up times) and outcome
    ``o``; both arms share it. With :math:`D = \\operatorname{diag}(\\rho)`:
    :math:`\\Sigma_{00} = \\Sigma_{tt} = R`, :math:`\\Sigma_{0t} = R D`,
    :math:`\\Sigma_{tt'} = D R D + \\tau (R - D R D)` for :math:`t \\ne t'`.
    """
    r = truth.outcome_corr
    d = np.diag([o.rho for o in truth.outcomes])
    drd = d @ r @ d
    k = len(truth.times)
    n_o = len(truth.outcomes)
    out = np.empty((k * n_o, k * n_o))
    for i in range(k):
        for j in range(k):
            if i == j:
                block = r
            elif i == 0:
                block = r @ d
            elif j == 0:
                block = d @ r
            else:
                block = drd + truth.time_corr * (r - drd)
            out[i * n_o : (i + 1) * n_o, j * n_o : (j + 1) * n_o] = block
    return out


def change_covariance(truth: TrialTruth) -> np.ndarray:
    """The exact within-arm covariance of one patient's changes from baseline, natural units.

    Index ``t * O + o`` over follow-up times and outcomes. Its diagonal is
    :math:`2 \\sigma_o^2 (1 - \\rho_o)`. Before rounding and clipping.
    """
    n_o, n_t = len(truth.outcomes), len(truth.follow_up)
    sd = np.tile([o.sd for o in truth.outcomes], n_t + 1)
    cov = score_correlation(truth) * np.outer(sd, sd)
    contrast = np.hstack([-np.tile(np.eye(n_o), (n_t, 1)), np.eye(n_t * n_o)])
    return contrast @ cov @ contrast.T


def _expected_observed(mean: float, sd: float, out: OutcomeTruth, truth: TrialTruth) -> float:
    """E[clip(round(X))] for X ~ N(mean, sd), exactly (rounding and clipping as in simulation)."""
    lo, hi = out.scale_min, out.scale_max
    if truth.round_to is None:
        if not truth.clip:
            return mean
        a, b = (lo - mean) / sd, (hi - mean) / sd
        pa, pb = stats.norm.cdf(a), stats.norm.cdf(b)
        return float(lo * pa + hi * stats.norm.sf(b) + mean * (pb - pa) + sd * (stats.norm.pdf(a) - stats.norm.pdf(b)))
    h = truth.round_to
    k = np.arange(math.floor((mean - 12 * sd) / h) - 1, math.ceil((mean + 12 * sd) / h) + 2)
    edges = (np.append(k, k[-1] + 1) - 0.5) * h
    prob = np.diff(stats.norm.cdf((edges - mean) / sd))
    values = k * h
    if truth.clip:
        values = np.clip(values, lo, hi)
    return float(np.sum(prob * values) / np.sum(prob))


def expected_scores(truth: TrialTruth) -> pd.DataFrame:
    """Exact expected observed scores and changes after rounding and clipping.

    Each score is normal before rounding and clipping, so its expectation after them is a
    one-dimensional integral: with clipping only,
    :math:`E[\\min(\\max(X, l), h)] = l\\Phi(a) + h(1 - \\Phi(b)) + \\mu(\\Phi(b) - \\Phi(a)) +
    \\sigma(\\phi(a) - \\phi(b))`, :math:`a = (l - \\mu)/\\sigma`, :math:`b = (h - \\mu)/\\sigma`;
    with rounding to :math:`h_r`, a sum over the grid :math:`k h_r` of
    :math:`P(|X - k h_r| < h_r / 2)` times the (clipped) grid value. The expected change is the
    difference of two such expectations (expectation is linear); MCAR dropout does not change it.
    Without rounding and clipping ``change`` equals the truth exactly.

    Returns
    -------
    pandas.DataFrame
        Rows ``arm, outcome, time`` with ``score`` (expected observed score) and ``change``
        (expected observed change from baseline; NaN at baseline) and ``change_truth`` (the
        truth before rounding and clipping).
    """
    transformed = truth.clip or truth.round_to is not None
    rows = []
    for arm in ARMS:
        change = truth.change(arm)
        for j, out in enumerate(truth.outcomes):
            base = _expected_observed(out.baseline_mean, out.sd, out, truth)
            rows.append(
                {
                    "arm": arm,
                    "outcome": out.name,
                    "time": 0.0,
                    "score": base,
                    "change": math.nan,
                    "change_truth": math.nan,
                }
            )
            for i, t in enumerate(truth.follow_up):
                mean = out.baseline_mean + change[i, j]
                score = _expected_observed(mean, out.sd, out, truth)
                rows.append(
                    {
                        "arm": arm,
                        "outcome": out.name,
                        "time": t,
                        "score": score,
                        "change": score - base if transformed else float(change[i, j]),
                        "change_truth": float(change[i, j]),
                    }
                )
    return pd.DataFrame(rows)


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
        outcomes = (
            OutcomeTruth("VAS", "VAS", 0, 100, 65, 20, 0.3, 15, unit="mm"),
            OutcomeTruth("ODI", "ODI", 0, 100, 45, 16, 0.6, 10),
            OutcomeTruth("QBPDS", "QBPDS", 0, 100, 50, 20, 0.6, 15),
            OutcomeTruth("RMDQ", "RMDQ", 0, 24, 14, 5, 0.5, 5),
        )
        if outcome_corr is None:
            p, q, d = _PAIN_DISABILITY, _QBPDS_OTHERS, _ODI_RMDQ
            #                 VAS ODI QBPDS RMDQ
            outcome_corr = np.array(
                [
                    [1.0, p, q, p],
                    [p, 1.0, q, d],
                    [q, q, 1.0, q],
                    [p, d, q, 1.0],
                ]
            )
    outcomes = tuple(outcomes)
    if outcome_corr is None:
        raise ValueError("with custom outcomes, give outcome_corr too")
    shape = (len(follow_up), len(outcomes))
    if change_reference is None:
        if len(follow_up) != 2:
            raise ValueError("with other than two follow-up times, give change_reference too")
        sd = np.array([o.sd for o in outcomes])
        change_reference = np.array([-0.8, -1.0])[:, None] * sd[None, :]
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


# ---------------------------------------------------------------------------------------------
# Patients
# ---------------------------------------------------------------------------------------------


def simulate_patients(truth: TrialTruth, *, seed: int) -> pd.DataFrame:
    """Simulate one trial's patients from ``truth`` (model in the module docstring).

    Parameters
    ----------
    truth
        The truth.
    seed
        Non-negative integer; the same seed gives identical frames.

    Returns
    -------
    pandas.DataFrame
        Long format, one row per patient x outcome x time: ``patient`` (``ref_001``... /
        ``new_001``...), ``arm`` (``reference_arm`` / ``new_arm``), ``outcome``, ``time``
        (0 = baseline, then the follow-up weeks) and ``value`` (NaN for a missed visit).
        Ordered by arm (reference first), patient, outcome, time. ``frame.attrs["seed"]`` holds
        the seed, which the summarising functions use for their ``source`` column.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer (got {seed!r})")
    factor_r, factor_u = _latent_factors(truth)
    n_o, n_t = len(truth.outcomes), len(truth.follow_up)
    mu = np.array([o.baseline_mean for o in truth.outcomes])
    sd = np.array([o.sd for o in truth.outcomes])
    rho = np.array([o.rho for o in truth.outcomes])
    lo = np.array([o.scale_min for o in truth.outcomes])
    hi = np.array([o.scale_max for o in truth.outcomes])
    arm_streams = np.random.SeedSequence(int(seed)).spawn(3)
    dropout_rng = np.random.default_rng(arm_streams[2])
    frames = []
    for arm, stream in zip(ARMS, arm_streams[:2], strict=True):
        rng = np.random.default_rng(stream)
        n = truth.n(arm)
        z = rng.standard_normal((n, n_o)) @ factor_r.T
        u = (rng.standard_normal((n, n_t * n_o)) @ factor_u.T).reshape(n, n_t, n_o)
        scores = np.empty((n, n_t + 1, n_o))
        scores[:, 0, :] = mu + sd * z
        follow_std = rho * z[:, None, :] + np.sqrt(1 - rho**2) * u
        scores[:, 1:, :] = mu + truth.change(arm)[None, :, :] + sd * follow_std
        if truth.round_to is not None:
            scores = np.round(scores / truth.round_to) * truth.round_to
        if truth.clip:
            scores = np.clip(scores, lo, hi)
        missed = dropout_rng.random((n, n_t)) < truth.dropout  # drawn even when dropout is 0
        scores[:, 1:, :][missed] = np.nan
        width = max(3, len(str(n)))
        prefix = "ref" if arm == REFERENCE_ARM else "new"
        ids = np.array([f"{prefix}_{i + 1:0{width}d}" for i in range(n)])
        # (patient, outcome, time) order
        values = scores.transpose(0, 2, 1)
        frames.append(
            pd.DataFrame(
                {
                    "patient": np.repeat(ids, n_o * (n_t + 1)),
                    "arm": arm,
                    "outcome": np.tile(np.repeat(truth.outcome_names, n_t + 1), n),
                    "time": np.tile(np.array(truth.times), n * n_o),
                    "value": values.reshape(-1),
                }
            )
        )
    patients = pd.concat(frames, ignore_index=True)
    patients.attrs["seed"] = int(seed)
    return patients


def _arm_arrays(patients: pd.DataFrame, truth: TrialTruth) -> dict[str, np.ndarray]:
    """Per arm, an array ``(patient, time incl. baseline, outcome)`` of scores (NaN = missing)."""
    needed = {"patient", "arm", "outcome", "time", "value"}
    if not needed <= set(patients.columns):
        raise ValueError(f"patients needs columns {sorted(needed)} (got {list(patients.columns)})")
    arms = set(patients["arm"].unique())
    if not arms <= set(ARMS) or not arms:
        raise ValueError(f"patients' arms must be {REFERENCE_ARM!r} and {NEW_ARM!r} (got {sorted(arms)})")
    if set(patients["outcome"].unique()) != set(truth.outcome_names):
        raise ValueError("patients' outcomes do not match the truth")
    if set(patients["time"].astype(float).unique()) != set(truth.times):
        raise ValueError("patients' times do not match the truth (baseline 0 and the follow-up times)")
    columns = pd.MultiIndex.from_product([truth.times, truth.outcome_names], names=["time", "outcome"])
    out = {}
    for arm in ARMS:
        sub = patients[patients["arm"] == arm]
        wide = sub.pivot(index="patient", columns=["time", "outcome"], values="value")
        wide = wide.reindex(columns=columns)
        out[arm] = wide.to_numpy(dtype=float).reshape(len(wide), len(truth.times), len(truth.outcomes))
    return out


def _source(patients: pd.DataFrame, seed: int | None) -> str:
    if seed is None:
        seed = patients.attrs.get("seed")
    if seed is None:
        raise ValueError("give seed= (the patients frame carries no attrs['seed'])")
    return f"SIMULATED (seed {int(seed)})"


def summarise_arms(
    patients: pd.DataFrame,
    truth: TrialTruth,
    *,
    kind: Literal["score", "change"],
    seed: int | None = None,
) -> pd.DataFrame:
    """Arm-level summaries, as a results table reports them (``arm_summaries.csv`` rows).

    ``kind="score"``: per arm, outcome and time (baseline included) the number of observed scores
    ``n``, their mean and SD (``ddof=1``). ``kind="change"``: per arm, outcome and follow-up time
    the same of the change :math:`y_{it} - b_i` over patients observed at both times.

    Returns
    -------
    pandas.DataFrame
        Columns ``arm, outcome, time, kind, n, mean, sd, source, note``; ``source`` is
        ``"SIMULATED (seed N)"`` with ``seed`` or ``patients.attrs["seed"]``.
    """
    if kind not in ("score", "change"):
        raise ValueError(f"kind must be 'score' or 'change' (got {kind!r})")
    source = _source(patients, seed)
    arrays = _arm_arrays(patients, truth)
    rows = []
    for arm in ARMS:
        data = arrays[arm]
        for j, out in enumerate(truth.outcomes):
            for k, t in enumerate(truth.times):
                if kind == "score":
                    x = data[:, k, j]
                    note = "sample mean and SD (ddof=1) of the simulated scores"
                elif k == 0:
                    continue
                else:
                    x = data[:, k, j] - data[:, 0, j]
                    note = "sample mean and SD (ddof=1) of the simulated change from baseline (complete pairs)"
                x = x[~np.isnan(x)]
                rows.append(
                    {
                        "arm": arm,
                        "outcome": out.name,
                        "time": t,
                        "kind": kind,
                        "n": len(x),
                        "mean": float(np.mean(x)) if len(x) else math.nan,
                        "sd": float(np.std(x, ddof=1)) if len(x) > 1 else math.nan,
                        "source": source,
                        "note": note,
                    }
                )
    return pd.DataFrame(rows)


def _changes(arrays: dict[str, np.ndarray], k: int, j: int) -> dict[str, np.ndarray]:
    out = {}
    for arm in ARMS:
        d = arrays[arm][:, k, j] - arrays[arm][:, 0, j]
        out[arm] = d[~np.isnan(d)]
    return out


def _pooled_t(x_new: np.ndarray, x_ref: np.ndarray) -> tuple[float, float, float, float, float]:
    """Pooled two-sample t: estimate (new - ref), SE, df, t, two-sided p."""
    n1, n2 = len(x_new), len(x_ref)
    if n1 < 2 or n2 < 2:
        raise ValueError("a two-sample t-test needs at least 2 complete patients per arm")
    est = float(np.mean(x_new) - np.mean(x_ref))
    dof = n1 + n2 - 2
    pooled = ((n1 - 1) * np.var(x_new, ddof=1) + (n2 - 1) * np.var(x_ref, ddof=1)) / dof
    se = float(np.sqrt(pooled * (1 / n1 + 1 / n2)))
    t = est / se
    return est, se, float(dof), t, float(2 * stats.t.sf(abs(t), dof))


def _one_sample_t(x: np.ndarray) -> tuple[float, float, float, float, float]:
    """Paired t on changes: mean, SE, df, t, two-sided p."""
    n = len(x)
    if n < 2:
        raise ValueError("a paired t-test needs at least 2 complete patients")
    est = float(np.mean(x))
    se = float(np.std(x, ddof=1) / np.sqrt(n))
    t = est / se
    return est, se, float(n - 1), t, float(2 * stats.t.sf(abs(t), n - 1))


def _ancova(follow: dict[str, np.ndarray], base: dict[str, np.ndarray]) -> tuple[float, float, float, float, float]:
    """OLS ``follow-up ~ 1 + new + baseline``: arm coefficient, SE, df, t, two-sided p."""
    y = np.concatenate([follow[REFERENCE_ARM], follow[NEW_ARM]])
    b = np.concatenate([base[REFERENCE_ARM], base[NEW_ARM]])
    new = np.concatenate([np.zeros(len(follow[REFERENCE_ARM])), np.ones(len(follow[NEW_ARM]))])
    x = np.column_stack([np.ones_like(y), new, b])
    beta, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    dof = len(y) - 3
    if rank < 3 or dof < 1:
        raise ValueError("the ANCOVA design is singular or has no residual degrees of freedom")
    resid = y - x @ beta
    sigma2 = float(resid @ resid) / dof
    pinv = np.linalg.pinv(x)
    se = float(np.sqrt(sigma2 * (pinv @ pinv.T)[1, 1]))
    t = float(beta[1]) / se
    return float(beta[1]), se, float(dof), t, float(2 * stats.t.sf(abs(t), dof))


def contrasts_from_patients(
    patients: pd.DataFrame,
    truth: TrialTruth,
    *,
    method: Literal["change_t", "ancova"] = "change_t",
    ci_level: float = 0.95,
    seed: int | None = None,
) -> pd.DataFrame:
    """Between-arm contrasts per follow-up time and outcome (``contrasts.csv`` rows).

    ``method="change_t"`` (``measure = change``): the difference in mean change, new minus
    reference, :math:`\\hat\\delta = \\bar d_{\\text{new}} - \\bar d_{\\text{ref}}`, with the pooled
    two-sample t-test: :math:`s_p^2 = ((n_1 - 1)s_1^2 + (n_2 - 1)s_2^2)/(n_1 + n_2 - 2)`,
    :math:`SE = s_p\\sqrt{1/n_1 + 1/n_2}`, ``df`` :math:`= n_1 + n_2 - 2`.

    ``method="ancova"`` (``measure = ancova``): the arm coefficient of the OLS fit
    :math:`y_{it} = \\beta_0 + \\beta_1 [\\text{new}] + \\beta_2 b_i + \\varepsilon` (numpy
    ``lstsq``), :math:`SE = \\sqrt{\\hat\\sigma^2 [(X^T X)^{-1}]_{11}}`, ``df`` :math:`= n - 3`.

    Both use patients observed at baseline and at the time. CI:
    :math:`\\hat\\delta \\pm t_{df, (1 + \\text{level})/2} SE`; ``p_value`` two-sided.

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome, time, measure, direction, estimate, ci_low, ci_high, ci_level, se,
        p_value, df, source, note``; ``direction`` is ``new_minus_reference``.
    """
    if method not in ("change_t", "ancova"):
        raise ValueError(f"method must be 'change_t' or 'ancova' (got {method!r})")
    if not 0 < ci_level < 1:
        raise ValueError(f"ci_level must be in (0, 1) (got {ci_level!r})")
    source = _source(patients, seed)
    arrays = _arm_arrays(patients, truth)
    rows = []
    for k, t in enumerate(truth.times[1:], start=1):
        for j, out in enumerate(truth.outcomes):
            if method == "change_t":
                d = _changes(arrays, k, j)
                est, se, dof, _, p = _pooled_t(d[NEW_ARM], d[REFERENCE_ARM])
                measure = "change"
                note = (
                    "pooled two-sample t-test on change scores, df = n1 + n2 - 2 "
                    f"(complete pairs: {len(d[NEW_ARM])} new, {len(d[REFERENCE_ARM])} reference)"
                )
            else:
                follow, base = {}, {}
                for arm in ARMS:
                    ok = ~np.isnan(arrays[arm][:, k, j]) & ~np.isnan(arrays[arm][:, 0, j])
                    follow[arm] = arrays[arm][ok, k, j]
                    base[arm] = arrays[arm][ok, 0, j]
                est, se, dof, _, p = _ancova(follow, base)
                measure = "ancova"
                note = (
                    "OLS ANCOVA: follow-up ~ arm + baseline, df = n - 3 "
                    f"(complete pairs: {len(follow[NEW_ARM])} new, "
                    f"{len(follow[REFERENCE_ARM])} reference)"
                )
            half = float(stats.t.ppf((1 + ci_level) / 2, dof)) * se
            rows.append(
                {
                    "outcome": out.name,
                    "time": t,
                    "measure": measure,
                    "direction": "new_minus_reference",
                    "estimate": est,
                    "ci_low": est - half,
                    "ci_high": est + half,
                    "ci_level": ci_level,
                    "se": se,
                    "p_value": p,
                    "df": dof,
                    "source": source,
                    "note": note,
                }
            )
    return pd.DataFrame(rows)


def thresholds_from_patients(
    patients: pd.DataFrame,
    truth: TrialTruth,
    *,
    alpha: float = 0.05,
    seed: int | None = None,
) -> pd.DataFrame:
    """Threshold statements, as an abstract reports them (``thresholds.csv`` rows).

    Per follow-up time and outcome:

    * between arms, the pooled two-sample t-test on change scores (as in
      :func:`contrasts_from_patients`): relation ``"<"`` when :math:`p < \\alpha`, with direction
      ``favours_new`` when the new arm's mean change is lower (lower is better) else
      ``favours_reference``; otherwise ``">"`` and no direction;
    * within each arm, the paired t-test of follow-up against baseline (one-sample t on the
      changes, df :math:`n - 1`): ``"<"`` with ``improvement`` (mean change below 0) or
      ``worsening``, or ``">"``.

    ``p_value`` holds the exact two-sided p-value.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1) (got {alpha!r})")
    source = _source(patients, seed)
    arrays = _arm_arrays(patients, truth)
    rows = []

    def row(out, t, comparison, arm, est, p, test, note):
        significant = p < alpha
        if comparison == "between":
            direction = "favours_new" if est < 0 else "favours_reference"
        else:
            direction = "improvement" if est < 0 else "worsening"
        return {
            "outcome": out.name,
            "time": t,
            "comparison": comparison,
            "arm": arm,
            "relation": "<" if significant else ">",
            "alpha": alpha,
            "direction": direction if significant else None,
            "test": test,
            "p_value": p,
            "source": source,
            "note": note,
        }

    for k, t in enumerate(truth.times[1:], start=1):
        for j, out in enumerate(truth.outcomes):
            d = _changes(arrays, k, j)
            est, _, _, _, p = _pooled_t(d[NEW_ARM], d[REFERENCE_ARM])
            note = (
                "pooled two-sample t-test on change scores "
                f"(complete pairs: {len(d[NEW_ARM])} new, {len(d[REFERENCE_ARM])} reference)"
            )
            rows.append(row(out, t, "between", None, est, p, "two_sample_t", note))
            for arm in ARMS:
                est, _, _, _, p = _one_sample_t(d[arm])
                note = f"paired t-test, follow-up vs baseline ({len(d[arm])} complete pairs)"
                rows.append(row(out, t, "within", arm, est, p, "paired_t", note))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Study folders
# ---------------------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            raise ValueError(f"cannot write a non-finite number to study.toml ({value!r})")
        return repr(float(value))
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)  # a valid TOML basic string...
        return text.replace("\x7f", "\\u007f")  # ...once DEL is escaped too
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to study.toml")


def _toml_dumps(doc: dict[str, Any], header: str) -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    tables: list[tuple[str, dict]] = []
    for key, value in doc.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")

    def emit(name: str, table: dict) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        subtables = [(f"{name}.{k}", v) for k, v in table.items() if isinstance(v, dict)]
        if scalars or not subtables:  # a table of tables needs no header of its own
            lines.append("")
            lines.append(f"[{name}]")
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in scalars.items())
        for sub_name, sub in subtables:
            emit(sub_name, sub)

    for name, table in tables:
        emit(name, table)
    return "\n".join(lines) + "\n"


_LEVEL_FILE = {
    "ipd": "ipd",
    "arm_summary": "arm_summary",
    "arm_summary_change": "arm_summary",
    "contrast": "contrast",
    "threshold": "threshold",
}

_LEVEL_TEXT = {
    "ipd": "ipd.csv: the simulated patients' scores (an empty value is a missed visit)",
    "arm_summary": "arm_summaries.csv: n, mean and SD of the scores per arm and time",
    "arm_summary_change": "arm_summaries.csv: n, mean and SD of the change from baseline per arm",
    "contrast": "contrasts.csv: new minus reference per follow-up cell, with CI, SE, p and df",
    "threshold": (
        "thresholds.csv: P<alpha / P>alpha statements between the arms (pooled two-sample t "
        "on change) and within each arm (paired t)"
    ),
}


def _check_levels(levels: Sequence[str]) -> str:
    if isinstance(levels, str):
        levels = [levels]
    levels = list(levels)
    unknown = [lv for lv in levels if lv not in LEVELS]
    if unknown:
        raise ValueError(f"unknown evidence level(s) {unknown} (choose from {', '.join(LEVELS)})")
    if not levels:
        raise ValueError(f"give one evidence level (one of {', '.join(LEVELS)})")
    if len(levels) > 1:
        raise ValueError(
            f"one evidence level per simulated study (got {levels}): every level is derived "
            "from the same patients and gives every follow-up cell, so two levels would count "
            "the same evidence twice (the threshold level already includes the within-arm "
            "statements); write one folder per level"
        )
    return levels[0]


def _csv_frame(frame: pd.DataFrame, file_level: str) -> pd.DataFrame:
    """Columns in the loader's schema order, numbers unrounded, integers as integers."""
    columns = [c.name for c in SCHEMAS[file_level] if c.name in frame.columns]
    return frame[columns]


def read_truth(folder: str | Path) -> tuple[TrialTruth, dict[str, Any]]:
    """Read ``truth.json`` from a simulated study folder: the truth and the whole record.

    The record holds ``seed``, ``package_version``, ``level`` and ``expected`` (the exact
    expected observed changes after rounding and clipping, :func:`expected_scores`).
    """
    record = json.loads((Path(folder) / TRUTH_FILE).read_text(encoding="utf-8"))
    return TrialTruth.from_dict(record["truth"]), record


def write_study(
    folder: Path,
    truth: TrialTruth,
    patients: pd.DataFrame,
    *,
    levels: Sequence[str],
    seed: int,
    study_id: str = "simulated",
    contrast_method: Literal["change_t", "ancova"] = "change_t",
    ci_level: float = 0.95,
    alpha: float = 0.05,
    overwrite: bool = False,
) -> Path:
    """Write one simulated trial as a study folder in the bundled format, with its truth.

    Parameters
    ----------
    folder
        Created if needed; must be empty unless ``overwrite`` (which replaces only the files
        this function writes: ``study.toml``, the evidence CSVs and ``truth.json``).
    truth, patients
        The truth and the patients simulated from it (:func:`simulate_patients`).
    levels
        Exactly one of ``ipd``, ``arm_summary`` (score form), ``arm_summary_change``,
        ``contrast``, ``threshold`` (between-arm and within-arm statements). Each level gives
        every follow-up cell's between-arm evidence from the same patients, so any two together
        would double count: ``ValueError``.
    seed
        The seed the patients were simulated with (checked against ``patients.attrs["seed"]``
        when present); written in the title, citation, every ``source`` and ``truth.json``.
    study_id
        ``study.id`` (lower-case letters, digits, ``_``).
    contrast_method, ci_level, alpha
        Passed to :func:`contrasts_from_patients` / :func:`thresholds_from_patients`.

    Returns
    -------
    pathlib.Path
        The folder. ``study.toml`` says ``simulated = true``; arms ``reference_arm`` /
        ``new_arm`` with their randomised n; outcomes with range, ``lower_is_better``, margin and
        ``reference_sd`` = the true SD (source "simulation truth"). ``truth.json`` holds
        ``truth.to_dict()``, the seed, the package version and the expected observed changes.

    Raises
    ------
    ValueError
        Two or unknown levels, a bad ``study_id``, a seed that does not match the patients, or
        (level ``ipd``) scores outside the scale range, which the loader refuses (simulate with
        ``clip=True``).
    FileExistsError
        ``folder`` is not empty and ``overwrite`` is false.
    """
    from bayes_stenosis import __version__

    level = _check_levels(levels)
    if not isinstance(study_id, str) or not _STUDY_ID.match(study_id):
        raise ValueError(f"study_id must be lower-case letters, digits and '_' (got {study_id!r})")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an integer (got {seed!r})")
    seed = int(seed)
    attr_seed = patients.attrs.get("seed")
    if attr_seed is not None and int(attr_seed) != seed:
        raise ValueError(f"seed {seed} does not match the patients' seed {attr_seed}")
    arrays = _arm_arrays(patients, truth)
    for arm in ARMS:
        if arrays[arm].shape[0] != truth.n(arm):
            raise ValueError(f"{arm}: {arrays[arm].shape[0]} patients, the truth says {truth.n(arm)}")
    source = f"SIMULATED (seed {seed})"
    tag = f"SIMULATED trial (bayes_stenosis.simulation, seed {seed})"

    # --- the evidence -------------------------------------------------------------------------
    if level == "ipd":
        frame = patients[["patient", "arm", "outcome", "time", "value"]].copy()
        for out in truth.outcomes:
            vals = frame.loc[frame["outcome"] == out.name, "value"]
            bad = vals[(vals < out.scale_min) | (vals > out.scale_max)]
            if len(bad):
                raise ValueError(
                    f"{len(bad)} simulated {out.name} scores lie outside the scale "
                    f"{out.scale_min:g}-{out.scale_max:g} (e.g. {bad.iloc[0]:g}); the study loader "
                    "refuses them in ipd.csv: simulate with clip=True"
                )
        frame["source"] = source
        frame["note"] = np.where(frame["value"].isna(), "missed visit (simulated MCAR dropout)", "")
    elif level in ("arm_summary", "arm_summary_change"):
        kind = "score" if level == "arm_summary" else "change"
        frame = summarise_arms(patients, truth, kind=kind, seed=seed)
    elif level == "contrast":
        frame = contrasts_from_patients(patients, truth, method=contrast_method, ci_level=ci_level, seed=seed)
    else:
        frame = thresholds_from_patients(patients, truth, alpha=alpha, seed=seed)
    if "p_value" in frame.columns:  # the loader wants p in (0, 1]: an underflowed p is left empty
        under = frame["p_value"] <= 0
        frame.loc[under, "note"] = frame.loc[under, "note"] + "; exact p below floating-point range"
        frame.loc[under, "p_value"] = math.nan
    file_level = _LEVEL_FILE[level]
    frame = _csv_frame(frame, file_level)

    # --- study.toml ---------------------------------------------------------------------------
    n_ref, n_new = truth.n_per_arm
    rounding = "none" if truth.round_to is None else f"{truth.round_to:g}"
    clipping = "yes (biases the means; truth.json gives the expected observed changes)" if truth.clip else "no"
    notes = [
        "SIMULATED data, not patients: generated by bayes_stenosis.simulation "
        f"(version {__version__}) with seed {seed}; the truth is in {TRUTH_FILE} beside this file.",
        f"Evidence level: {level} ({_LEVEL_TEXT[level]}).",
        "Generative model: baseline b = mu + sd*z, follow-up y = mu + change[arm,t] + "
        "sd*(rho*z + sqrt(1-rho^2)*u), z ~ N(0, outcome_corr), u ~ N(0, time_corr (x) C); "
        "true mean change = change_reference (+ delta in the new arm).",
        f"time_corr = {truth.time_corr:g}; dropout (MCAR, per patient x visit) = "
        f"{truth.dropout:g}; round_to = {rounding}; clip to scale = {clipping}.",
    ]
    doc: dict[str, Any] = {
        "schema_version": 1,
        "study": {
            "id": study_id,
            "title": tag,
            "citation": f"{tag}. Not a real trial: no patients were enrolled.",
            "design": "parallel",
            "n_randomised_total": n_ref + n_new,
            "n_randomised_total_source": "simulated",
            "allocation": f"simulated: {n_ref} reference, {n_new} new",
            "simulated": True,
            "notes": notes,
        },
        "arms": {
            REFERENCE_ARM: {
                "label": "Reference arm (SIMULATED)",
                "role": "reference",
                "n_randomised": n_ref,
                "n_source": "simulated",
            },
            NEW_ARM: {
                "label": "New arm (SIMULATED)",
                "role": "new",
                "n_randomised": n_new,
                "n_source": "simulated",
            },
        },
        "outcomes": {
            out.name: {
                "label": f"{out.name} (SIMULATED)",
                "instrument": out.instrument,
                "unit": out.unit,
                "scale_min": out.scale_min,
                "scale_max": out.scale_max,
                "scale_source": "simulation truth",
                "direction": "lower_is_better",
                "margin": out.margin,
                "margin_source": "simulation truth",
                "reference_sd": out.sd,
                "reference_sd_source": "simulation truth",
            }
            for out in truth.outcomes
        },
        "times": {
            "unit": "weeks",
            "baseline": 0.0,
            "follow_up": list(truth.follow_up),
            "source": "simulation design",
        },
    }
    StudyFile.model_validate(doc)  # the loader's own schema, before anything is written
    toml_text = _toml_dumps(doc, f"{tag}.\nWritten by bayes_stenosis.simulation.write_study; not real data.")

    expected = expected_scores(truth)
    follow = expected[expected["time"] > 0]
    shape = (len(truth.follow_up), len(truth.outcomes))
    change_obs = {
        arm: follow[follow["arm"] == arm]
        .pivot(index="time", columns="outcome", values="change")
        .reindex(index=list(truth.follow_up), columns=truth.outcome_names)
        .to_numpy()
        .reshape(shape)
        for arm in ARMS
    }
    record = {
        "generator": "bayes_stenosis.simulation",
        "package_version": __version__,
        "seed": seed,
        "study_id": study_id,
        "level": level,
        "arms": {"reference": REFERENCE_ARM, "new": NEW_ARM},
        "truth": truth.to_dict(),
        "expected": {
            "note": (
                "exact expected observed mean changes after rounding and clipping (equal to the "
                "truth when neither is applied); MCAR dropout does not change them"
            ),
            "change_reference": change_obs[REFERENCE_ARM].tolist(),
            "delta": (change_obs[NEW_ARM] - change_obs[REFERENCE_ARM]).tolist(),
        },
    }
    truth_text = json.dumps(record, indent=2, allow_nan=False) + "\n"

    # --- write --------------------------------------------------------------------------------
    folder = Path(folder)
    ours = {"study.toml", TRUTH_FILE, *EVIDENCE_FILES.values()}
    if folder.exists():
        if not folder.is_dir():
            raise FileExistsError(f"{folder} exists and is not a folder")
        present = {p.name for p in folder.iterdir()}
        if present and not overwrite:
            raise FileExistsError(f"{folder} is not empty (pass overwrite=True to replace a simulated study)")
        if present - ours:
            raise FileExistsError(
                f"{folder} holds files write_study did not write "
                f"({', '.join(sorted(present - ours))}); refusing to overwrite"
            )
        for name in present:
            (folder / name).unlink()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.toml").write_text(toml_text, encoding="utf-8")
    frame.to_csv(folder / EVIDENCE_FILES[file_level], index=False, lineterminator="\n")
    (folder / TRUTH_FILE).write_text(truth_text, encoding="utf-8")
    return folder
