r"""Replicates of a study's reported statements from the generative model its fit uses: the statistics of
every statement (the joint model of :mod:`~bayes_stenosis.model.terms.threshold_joint`, or between-arm
statements jointly and within-arm ones independently) and whether they come out as reported. The statement
checks and SBC simulate from here; the likelihood is in :mod:`~bayes_stenosis.model.terms.threshold`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_stenosis.model.inputs import ModelInputs
from bayes_stenosis.model.terms.threshold import threshold_design
from bayes_stenosis.model.terms.threshold_joint import (
    JOINT_STATEMENT_VARIABLES,
    joint_statement_design,
    simulate_joint_statement_statistics,
)
from bayes_stenosis.spec import ModelSpec


def simulate_statement_statistics(
    noncentrality: np.ndarray,
    between_corr: np.ndarray | None,
    design: pd.DataFrame,
    rng: np.random.Generator,
    replicates: int = 1,
) -> np.ndarray:
    r"""The test statistic of every statement of a study, replicated from the model's generative process.

    Per parameter draw: :math:`T_k = (Z_k + \lambda_k) / S_k` with :math:`Z` of the between-arm rows
    :math:`MVN(0, R)` (their correlation ``between_corr``), of the within-arm rows independent
    :math:`N(0, 1)`, and :math:`S_k = \sqrt{\chi^2_{df_k}/df_k}` independent (1 for a normal test), as in
    the likelihood.

    Parameters
    ----------
    noncentrality
        :math:`\lambda`, shape ``(draws, rows)`` in the design's row order.
    between_corr
        Shape ``(draws, B, B)`` over the design's between-arm rows in order, or None (no such rows).
    design
        :func:`threshold_design` of the study (``comparison`` and ``df`` per row are used).
    rng
        The random generator.
    replicates
        Replicates per draw.

    Returns
    -------
    np.ndarray
        :math:`T`, shape ``(draws, replicates, rows)``.
    """
    n, rows = noncentrality.shape
    z = rng.standard_normal((n, replicates, rows))
    between = np.flatnonzero((design["comparison"] == "between").to_numpy())
    if len(between) > 1 and between_corr is not None:
        chol = np.linalg.cholesky(between_corr)
        z[:, :, between] = np.einsum("nij,nrj->nri", chol, z[:, :, between])
    dfs = design["df"].to_numpy(dtype=float)
    s = np.ones((n, replicates, rows))
    finite = np.flatnonzero(np.isfinite(dfs))
    if len(finite):
        s[:, :, finite] = np.sqrt(rng.chisquare(dfs[finite], size=(n, replicates, len(finite))) / dfs[finite])
    return (z + noncentrality[:, None, :]) / s


def statement_event_kinds(t_stat: np.ndarray, crit: np.ndarray) -> np.ndarray:
    """The event each statistic makes: ``"inside"`` (|T| < c), ``"below"`` (T < -c) or ``"above"`` (T > c).

    ``crit`` broadcasts against ``t_stat`` along its last (row) axis.
    """
    return np.where(np.abs(t_stat) < crit, "inside", np.where(t_stat < 0, "below", "above"))


def simulate_statement_events(
    noncentrality: np.ndarray,
    between_corr: np.ndarray | None,
    design: pd.DataFrame,
    rng: np.random.Generator,
    replicates: int = 1,
) -> np.ndarray:
    r"""Replicate every statement of a study from the model's generative process, jointly.

    The statistics are :func:`simulate_statement_statistics`. Returns whether each replicate reproduces
    each statement (``|T| < c`` for "P>alpha", ``T < -c`` / ``T > c`` for "P<alpha" in its direction),
    shape ``(draws, replicates, rows)``.

    Parameters
    ----------
    noncentrality
        :math:`\lambda`, shape ``(draws, rows)`` in the design's row order.
    between_corr
        Shape ``(draws, B, B)`` over the design's between-arm rows in order, or None (no such rows).
    """
    t_stat = simulate_statement_statistics(noncentrality, between_corr, design, rng, replicates)
    return statement_reproduced(t_stat, design)


#: The model's deterministics that the statements are replicated from (:func:`simulate_study_statement_statistics`).
STATEMENT_VARIABLES = ("threshold_noncentrality", "threshold_between_corr", *JOINT_STATEMENT_VARIABLES)


def simulate_study_statement_statistics(
    draws: dict[str, np.ndarray], inputs: ModelInputs, spec: ModelSpec, rng: np.random.Generator, replicates: int = 1
) -> np.ndarray:
    """The test statistic of every statement, from the generative model the study's fit uses.

    ``draws``: the model's :data:`STATEMENT_VARIABLES` (those it has), each with a leading draw axis.
    The joint model (``threshold_joint``: every statement one event) when the study's fit uses it,
    else :func:`simulate_statement_statistics`. Returns shape ``(draws, replicates, rows)``.
    """
    design = threshold_design(inputs, spec)
    joint = joint_statement_design(inputs, spec, design)
    if joint is not None:
        lam, corr = (draws[name] for name in JOINT_STATEMENT_VARIABLES)
        return simulate_joint_statement_statistics(lam, corr, joint, design, rng, replicates)
    lam = draws["threshold_noncentrality"]
    return simulate_statement_statistics(lam, draws.get("threshold_between_corr"), design, rng, replicates)


def statement_reproduced(t_stat: np.ndarray, design: pd.DataFrame) -> np.ndarray:
    """Whether each statistic reproduces its statement (``|T| < c``, ``T < -c`` or ``T > c``)."""
    crit = design["crit"].to_numpy(dtype=float)
    kinds = design["kind"].to_numpy()
    return np.where(kinds == "inside", np.abs(t_stat) < crit, np.where(kinds == "below", t_stat < -crit, t_stat > crit))
