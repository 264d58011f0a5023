"""What a design analysis needs, as plain arrays: the cells and margins, the design prior (where the true
differences come from), the sampling model of a confirmatory trial's estimates, the analysis prior and
the decision rule; read from a run folder (:func:`design_inputs_from_run`) or given directly.

Units are standardized throughout (natural units / the outcome's standardising SD, as the run's
``delta``), cells time-major (the order of ``approximations.json``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from bayes_stenosis.errors import InputError
from bayes_stenosis.run import RunFolder

ANALYSIS_PRIORS = ("run", "flat")
DESIGN_PRIORS = ("draws", "normal")


@dataclass(frozen=True)
class DesignInputs:
    """A confirmatory trial's design problem.

    Attributes
    ----------
    times, outcomes
        The cells are ``(t, o)`` for t in times, o in outcomes (time-major), ``k`` of them.
    margins
        Equivalence margin of each cell, standardized (``k``).
    truths
        Design prior: draws of the true delta (``(D, k)``), one drawn per trial; one fixed effect is a
        single row. ``truth_cov`` given: the design prior is normal, mean ``truths[0]``, covariance
        ``truth_cov``.
    change_sd
        SD of the change from baseline of one patient per outcome, standardized: ``(D, n_outcome)``
        draws paired with ``truths`` row by row, or one row used for every draw.
    r_time, r_outcome
        Correlation of one patient's changes across follow-up times / across outcomes (``D`` draws or
        one value): the estimates' correlation is ``R_time[t, t'] R_outcome[o, o']`` (the run's model).
    prior_mean, prior_cov
        The analysis prior of delta, normal (``None``: flat, the posterior is the likelihood).
    threshold
        The decision rule: "equivalent" when P(|delta| < m) >= threshold (cell, or all cells jointly).
    notes
        What each assumption is and where it comes from, in words (written to the manifest).
    """

    times: tuple[float, ...]
    outcomes: tuple[str, ...]
    margins: np.ndarray
    truths: np.ndarray
    change_sd: np.ndarray
    r_time: np.ndarray
    r_outcome: np.ndarray
    prior_mean: np.ndarray | None
    prior_cov: np.ndarray | None
    threshold: float
    notes: dict = field(default_factory=dict)
    truth_cov: np.ndarray | None = None

    def __post_init__(self) -> None:
        k = len(self.times) * len(self.outcomes)
        if np.shape(self.margins) != (k,) or np.ndim(self.truths) != 2 or np.shape(self.truths)[1] != k:
            raise ValueError(f"margins must have {k} cells and truths shape (D, {k})")
        if np.shape(self.change_sd)[-1] != len(self.outcomes) or np.any(np.asarray(self.change_sd) <= 0):
            raise ValueError("change_sd must be positive, one per outcome")
        if not 0.5 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0.5, 1] (got {self.threshold})")

    @property
    def cells(self) -> list[tuple[float, str]]:
        return [(t, o) for t in self.times for o in self.outcomes]

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One trial's truth from the design prior (``k``) and its per-patient covariance of changes
        (``k x k``); the SDs and correlations come from the same design-prior row when they are draws."""
        n_rows = len(self.truths)
        j = int(rng.integers(n_rows)) if n_rows > 1 else 0
        truth = np.asarray(self.truths[j], dtype=float)
        if self.truth_cov is not None:
            truth = truth + np.linalg.cholesky(self.truth_cov) @ rng.standard_normal(len(truth))
        return truth, self.patient_covariance(j)

    def patient_covariance(self, j: int = 0) -> np.ndarray:
        r"""Covariance of one patient's changes across the cells (row ``j`` of the draws, if they are draws):
        :math:`\Sigma = D_\sigma (R_{time} \otimes R_{outcome}) D_\sigma`, exchangeable ``R``."""

        def row(a: np.ndarray) -> np.ndarray:
            a = np.atleast_1d(np.asarray(a, dtype=float))
            return a[j if a.shape[0] > 1 else 0]

        sd = np.tile(row(np.atleast_2d(self.change_sd)), len(self.times))
        n_t, n_o = len(self.times), len(self.outcomes)
        r_t, r_o = float(row(self.r_time)), float(row(self.r_outcome))
        corr = np.kron((1 - r_t) * np.eye(n_t) + r_t, (1 - r_o) * np.eye(n_o) + r_o)
        return corr * np.outer(sd, sd)

    def fingerprint(self) -> str:
        """SHA-256 of every number and setting (a trial store made for other inputs is refused)."""
        h = hashlib.sha256()
        for name in ("margins", "truths", "truth_cov", "change_sd", "r_time", "r_outcome", "prior_mean", "prior_cov"):
            value = getattr(self, name)
            h.update(name.encode())
            if value is not None:
                h.update(np.ascontiguousarray(value, dtype=float).tobytes())
        h.update(json.dumps([list(self.times), list(self.outcomes), self.threshold]).encode())
        return h.hexdigest()


def design_inputs_from_run(
    run: RunFolder,
    *,
    effect: float | None = None,
    design_prior: str = "draws",
    change_sd: float | None = None,
    analysis_prior: str = "run",
) -> DesignInputs:
    """The design problem of a confirmatory trial of the run's study, same outcomes and times.

    Parameters
    ----------
    run
        A loaded run folder (files read through its checks).
    effect
        A fixed true delta in every cell (standardized), instead of a design prior.
    design_prior
        ``"draws"``: the run's posterior draws of delta, one per trial (with the SD of change and the
        correlations of the same draw); ``"normal"``: the posterior's normal approximation
        (``approximations.json``), with the posterior medians of the SDs and correlations.
    change_sd
        A fixed per-patient SD of change (standardized) for every outcome; default: the run's posterior
        draws of ``change_sd_ratio`` (the model's SD of change over the reference SD), with ``r_time`` /
        ``r_outcome`` for the correlations, drawn jointly with delta. A run without them needs this.
    analysis_prior
        ``"run"``: the run's prior of delta as a normal (``approximations.json``, ``likelihood.prior_normal``:
        exact moments of a normal prior set, moment-matched to prior draws otherwise); ``"flat"``: none.
    """
    if analysis_prior not in ANALYSIS_PRIORS:
        raise ValueError(f"analysis_prior must be one of {ANALYSIS_PRIORS} (got {analysis_prior!r})")
    approx = run.read_json("approximations.json")
    cells = approx["cells"]
    times = tuple(dict.fromkeys(float(c["time"]) for c in cells))
    outcomes = tuple(dict.fromkeys(str(c["outcome"]) for c in cells))
    sds = {s["outcome"]: float(s["sd"]) for s in approx["standardising_sds"]}
    margins = np.array([float(m) / sds[c["outcome"]] for m, c in zip(approx["margins"], cells, strict=True)])
    post = run.idata.posterior
    notes = {"units": "standardized: natural units / the outcome's standardising SD (approximations.json)"}

    if design_prior not in DESIGN_PRIORS:
        raise ValueError(f"design_prior must be one of {DESIGN_PRIORS} (got {design_prior!r})")
    truth_cov = None
    if effect is not None:
        truths = np.full((1, len(margins)), float(effect))
        notes["design_prior"] = f"a fixed true delta of {effect:g} standardized units in every cell"
    elif design_prior == "normal":
        truths = np.asarray(approx["mean_std"], float)[None, :]
        truth_cov = np.asarray(approx["covariance_std"], float)
        notes["design_prior"] = "the normal approximation of the run's posterior of delta (approximations.json)"
    else:
        delta = post["delta"].stack(sample=("chain", "draw")).transpose("sample", "time", "outcome")
        truths = delta.sel(time=list(times), outcome=list(outcomes)).values.reshape(delta.sizes["sample"], -1)
        notes["design_prior"] = f"the run's posterior draws of delta ({truths.shape[0]:,} draws), one per trial"

    sd, r_t, r_o = sampling_model(run, truths.shape[0], outcomes, change_sd, notes)
    prior_mean = prior_cov = None
    if analysis_prior == "run":
        block = (approx.get("likelihood") or {}).get("prior_normal")
        if block is None:
            raise InputError(
                run.path / "approximations.json",
                "has no prior normal approximation (likelihood.prior_normal); use the flat analysis prior",
                field="likelihood.prior_normal",
            )
        prior_mean, prior_cov = np.asarray(block["mean_std"], float), np.asarray(block["covariance_std"], float)
        method = str(block["method"]).split(": the prior is not normal")[0]
        exact = "exact" if block.get("exact") else "an approximation: the prior is not normal"
        notes["analysis_prior"] = f"the run's prior of delta as a normal ({exact}): {method}"
    else:
        notes["analysis_prior"] = "flat: the trial's posterior of delta is its normal likelihood"
    threshold = float(run.manifest["decision_rule"]["threshold"])
    notes["decision_rule"] = run.manifest["decision_rule"]["text"]
    return DesignInputs(
        times, outcomes, margins, truths, sd, r_t, r_o, prior_mean, prior_cov, threshold, notes, truth_cov
    )


def sampling_model(
    run: RunFolder, n_draws: int, outcomes: tuple[str, ...], change_sd: float | None, notes: dict
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-patient SD of change per outcome and the two error correlations: from the run's posterior
    draws (paired with the design prior's rows when it is the posterior, medians for a fixed effect) or
    a stated SD with the correlations' medians (0 when the run has none)."""
    post = run.idata.posterior

    def draws(name: str, dims: tuple[str, ...] = ()) -> np.ndarray | None:
        if name not in post:
            return None
        x = post[name].stack(sample=("chain", "draw")).transpose("sample", *dims)
        if dims:
            x = x.sel(outcome=list(outcomes))
        values = x.values
        return values if n_draws > 1 else np.median(values, axis=0, keepdims=True)

    r_t, r_o = draws("r_time"), draws("r_outcome")
    r_t = np.zeros(1) if r_t is None else r_t
    r_o = np.zeros(1) if r_o is None else r_o
    if change_sd is not None:
        sd = np.full((1, len(outcomes)), float(change_sd))
        r_t, r_o = np.median(r_t, keepdims=True).ravel(), np.median(r_o, keepdims=True).ravel()
        notes["change_sd"] = f"stated: {change_sd:g} standardized units for every outcome"
    else:
        sd = draws("change_sd_ratio", ("outcome",))
        if sd is None:
            raise InputError(
                run.path / "posterior.nc",
                "has no change_sd_ratio (SD of change) to simulate a trial's estimates from; state one (change_sd)",
                field="change_sd_ratio",
            )
        how = "draw by draw with delta" if n_draws > 1 else "posterior medians"
        notes["change_sd"] = (
            f"the run's posterior of change_sd_ratio ({how}): the SD of change over the reference SD, "
            "trial SD ratio x sqrt(1 + r^2 - 2 rho r) with r the follow-up / baseline SD ratio (docs/methods.md)"
        )
    notes["correlation"] = (
        "a patient's changes correlate across times (r_time) and outcomes (r_outcome) as in the run's model; "
        f"medians {float(np.median(r_t)):.3f} and {float(np.median(r_o)):.3f}"
    )
    return sd, r_t, r_o
