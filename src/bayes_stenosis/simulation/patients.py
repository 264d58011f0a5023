"""Seeded patients from a truth (the generative model is in the package docstring)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_stenosis.simulation.covariance import latent_factors
from bayes_stenosis.simulation.truths import ARMS, REFERENCE_ARM, TrialTruth


def simulate_patients(truth: TrialTruth, *, seed: int) -> pd.DataFrame:
    """Simulate one trial's patients from ``truth`` (the generative model is in the package docstring).

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
    factors = latent_factors(truth)
    arm_streams = np.random.SeedSequence(int(seed)).spawn(3)
    dropout_rng = np.random.default_rng(arm_streams[2])
    frames = []
    for arm, stream in zip(ARMS, arm_streams[:2], strict=True):
        scores = _arm_scores(truth, arm, factors, np.random.default_rng(stream), dropout_rng)
        frames.append(_long_frame(truth, arm, scores))
    patients = pd.concat(frames, ignore_index=True)
    patients.attrs["seed"] = int(seed)
    return patients


def _arm_scores(
    truth: TrialTruth,
    arm: str,
    factors: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    dropout_rng: np.random.Generator,
) -> np.ndarray:
    """One arm's scores ``(patient, time incl. baseline, outcome)``: the generative model of the package
    docstring (``factors`` are :func:`latent_factors`), then rounding, clipping and MCAR missed visits (NaN).

    ``rng`` is the arm's own stream (``z``, then ``u``); ``dropout_rng`` is shared by the arms and drawn
    even when the dropout is 0 (common random numbers across scenarios).
    """
    factor_r, factor_u = factors
    n_o, n_t = len(truth.outcomes), len(truth.follow_up)
    mu = np.array([o.baseline_mean for o in truth.outcomes])
    sd = np.array([o.sd for o in truth.outcomes])
    rho = np.array([o.rho for o in truth.outcomes])
    lo = np.array([o.scale_min for o in truth.outcomes])
    hi = np.array([o.scale_max for o in truth.outcomes])
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
    missed = dropout_rng.random((n, n_t)) < truth.dropout
    scores[:, 1:, :][missed] = np.nan
    return scores


def _long_frame(truth: TrialTruth, arm: str, scores: np.ndarray) -> pd.DataFrame:
    """One arm's scores in long format, ordered by patient, outcome, time; ids ``ref_001``... / ``new_001``..."""
    n, n_times, n_o = scores.shape
    width = max(3, len(str(n)))
    prefix = "ref" if arm == REFERENCE_ARM else "new"
    ids = np.array([f"{prefix}_{i + 1:0{width}d}" for i in range(n)])
    values = scores.transpose(0, 2, 1)  # (patient, outcome, time)
    return pd.DataFrame(
        {
            "patient": np.repeat(ids, n_o * n_times),
            "arm": arm,
            "outcome": np.tile(np.repeat(truth.outcome_names, n_times), n),
            "time": np.tile(np.array(truth.times), n * n_o),
            "value": values.reshape(-1),
        }
    )
