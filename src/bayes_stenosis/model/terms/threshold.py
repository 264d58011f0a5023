r"""The threshold term: a reported "P>alpha" / "P<alpha" is an event on a noncentral t statistic
(see :mod:`bayes_stenosis.model.builder` for the model): quadrature over the SD's chi distribution,
log-space event probabilities, the design of a study's statements, and the likelihood terms."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.dist_math import normal_lcdf
from scipy import special, stats

from bayes_stenosis.model.inputs import ModelInputs
from bayes_stenosis.model.terms.threshold_joint import (
    EVENT_KIND_CODES,
    add_joint_statement_term,
    joint_statement_design,
)
from bayes_stenosis.spec import ModelSpec


def chi_nodes(df: float, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Nodes :math:`S_i` and log-weights for :math:`E[f(S)]`, :math:`S = \sqrt{\chi^2_{df}/df}`.

    Gauss-Hermite quadrature in :math:`z`, with the exact quantile map
    :math:`S(z) = \sqrt{F^{-1}_{\chi^2_{df}}(\Phi(z)) / df}`; the map is smooth for every df (nearly
    linear, by Wilson-Hilferty), so 32 nodes give P(event) to ~1e-12 relative error, tails
    included (checked against adaptive integration in the tests; scipy's ``nct.cdf`` is itself less
    accurate than that in the far tails). ``df = inf`` gives the normal test (S = 1).
    """
    if not np.isfinite(df):
        return np.ones(n_nodes), np.r_[0.0, np.full(n_nodes - 1, -np.inf)]
    z, w = special.roots_hermitenorm(n_nodes)
    # lower half through the CDF, upper half through the survival function: no rounding to 1
    quantiles = np.where(z < 0, stats.chi2.ppf(stats.norm.cdf(z), df), stats.chi2.isf(stats.norm.sf(z), df))
    nodes = np.sqrt(quantiles / df)
    return nodes, np.log(w / math.sqrt(2 * math.pi))


def _log_phi(x):
    return normal_lcdf(0.0, 1.0, x)


def _log_diff_phi(upper, lower):
    """log(Phi(upper) - Phi(lower)) for upper > lower, accurate in both tails."""
    right_tail = _log_phi(-lower) + pt.log1mexp(_log_phi(-upper) - _log_phi(-lower))
    left_tail = _log_phi(upper) + pt.log1mexp(_log_phi(lower) - _log_phi(upper))
    return pt.switch(lower > 0, right_tail, left_tail)


def log_prob_event(kind: str, lam, crit, nodes, log_weights):
    r"""log P(event) for T noncentral t, vectorised over rows (leading axis) and nodes.

    Parameters
    ----------
    kind
        ``"inside"`` for :math:`|T| < c`, ``"below"`` for :math:`T < -c`, ``"above"`` for :math:`T > c`.
    lam
        Noncentrality per row, shape (R,).
    crit
        Critical value c per row, shape (R,).
    nodes, log_weights
        Quadrature nodes and log-weights per row, shape (R, Q).
    """
    lam = lam[:, None]
    c_s = crit[:, None] * nodes
    if kind == "inside":
        terms = _log_diff_phi(c_s - lam, -c_s - lam)
    elif kind == "below":
        terms = _log_phi(-c_s - lam)
    elif kind == "above":
        terms = _log_phi(lam - c_s)
    else:  # pragma: no cover - guarded by callers
        raise ValueError(kind)
    return pm.math.logsumexp(terms + log_weights, axis=1)


_FAR = 1e6  # a bound far beyond any test statistic: Phi(-_FAR) = 0 to double precision, finite gradients


def log_prob_event_coded(kind_code, lam, crit, nodes, log_weights):
    r""":func:`log_prob_event` with the event kind per row as data (codes of ``EVENT_KIND_CODES``).

    Every kind is an interval of :math:`T`: inside :math:`(-c, c)`, below :math:`(-\infty, -c)`, above
    :math:`(c, \infty)` (infinite ends as :math:`\pm 10^6`), so one graph serves every row whatever
    its kind: :math:`\log E_S[\Phi(hi\,S - \lambda) - \Phi(lo\,S - \lambda)]`.
    """
    lam = lam[:, None]
    code = kind_code[:, None]
    c_s = crit[:, None] * nodes
    inside = pt.eq(code, EVENT_KIND_CODES["inside"])
    upper = pt.switch(pt.eq(code, EVENT_KIND_CODES["above"]), _FAR, pt.switch(inside, c_s, -c_s))
    lower = pt.switch(pt.eq(code, EVENT_KIND_CODES["below"]), -_FAR, pt.switch(inside, -c_s, c_s))
    terms = _log_diff_phi(upper - lam, lower - lam)
    return pm.math.logsumexp(terms + log_weights, axis=1)


def threshold_design(inputs: ModelInputs, spec: ModelSpec) -> pd.DataFrame:
    """Per threshold row: the event kind, df, critical value and the SE factor of the test."""
    out = []
    arms = inputs.coords["arm"]
    lower_better = inputs.new_better_sign < 0
    # completers: the tests were run on this share of the randomised patients
    sizes = {arm: n * spec.thresholds.analysed_fraction for arm, n in inputs.arm_sizes.items()}
    for rec in inputs.thresholds.to_dict("records"):
        if rec["comparison"] == "between":
            se_factor, dof, kind = _between_arm_test(rec, sizes[arms[1]], sizes[arms[0]], lower_better)
            arm_index = -1
        else:
            se_factor, dof, kind = _within_arm_test(rec, sizes[rec["arm"]], lower_better)
            arm_index = arms.index(rec["arm"])
        out.append(
            {
                "row": rec["row"],
                "comparison": rec["comparison"],
                "kind": kind,
                "df": dof,
                "crit": _critical_value(rec["alpha"], dof),
                "se_factor": se_factor,
                "arm_index": arm_index,
                "time_index": inputs.coords["time"].index(rec["time"]),
                "outcome_index": inputs.coords["outcome"].index(rec["outcome"]),
            }
        )
    return pd.DataFrame(out)


def _between_arm_test(rec: dict, n1: float, n2: float, lower_better: bool) -> tuple[float, float, str]:
    """SE factor, df and event kind of a between-arm statement; ``n1`` analysed in the new arm, ``n2`` in
    the reference arm. T = (new - ref) / SE: the new arm is better when T is negative (lower is better)."""
    se_factor = math.sqrt(1 / n1 + 1 / n2)
    if rec["test"] == "two_sample_t":
        dof = n1 + n2 - 2
    elif rec["test"] == "welch_t":
        a, b = 1 / n1, 1 / n2
        dof = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
    else:
        dof = math.inf
    if rec["relation"] == ">":
        return se_factor, dof, "inside"
    new_better = rec["direction"] == "favours_new"
    return se_factor, dof, "below" if new_better == lower_better else "above"


def _within_arm_test(rec: dict, n_a: float, lower_better: bool) -> tuple[float, float, str]:
    """SE factor, df and event kind of a within-arm statement on ``n_a`` analysed patients (paired t or normal)."""
    se_factor = 1 / math.sqrt(n_a)
    dof = n_a - 1 if rec["test"] == "paired_t" else math.inf
    if rec["relation"] == ">":
        return se_factor, dof, "inside"
    improved = rec["direction"] == "improvement"
    return se_factor, dof, "below" if improved == lower_better else "above"


def _critical_value(alpha: float, dof: float) -> float:
    """The two-sided critical value of a test at level ``alpha``: t with ``dof`` df, normal when infinite."""
    return float(stats.t.ppf(1 - alpha / 2, dof)) if np.isfinite(dof) else float(stats.norm.ppf(1 - alpha / 2))


BETWEEN_TESTS = ("change", "follow_up", "ancova")


def statistic_sd_ratios(spec: ModelSpec, rho, n_out: int):
    r"""SDs of the change and of the between-arm test's outcome, relative to the reference SD.

    With baseline SD :math:`\sigma_b = q_o s_o` (:math:`q_o` the trial's SD over the reference SD,
    :math:`\log q_o \sim N(0, s_q^2)`), follow-up SD :math:`\sigma_f = r_o \sigma_b` and their
    correlation :math:`\rho_o`: change :math:`q\sqrt{1 + r^2 - 2\rho r}`; follow-up :math:`q r`;
    ANCOVA residual :math:`q r \sqrt{1 - \rho^2}`. Which one a between-arm statement uses is the
    data container ``threshold_between_test`` (one-hot over :data:`BETWEEN_TESTS`), so a sweep over
    the test assumed reuses one compiled model; so are the median and log-SD of :math:`r`.
    """
    log_sigma = spec.scale.trial_sd_log_ratio_sigma
    if log_sigma > 0:
        z_ratio = pm.Normal("z_trial_sd_ratio", 0.0, 1.0, dims="outcome")
        sd_ratio = pm.Deterministic("trial_sd_ratio", pt.exp(log_sigma * z_ratio), dims="outcome")
    else:
        sd_ratio = pt.ones(n_out)
    log_median = pm.Data("followup_sd_ratio_log_median", np.log(spec.scale.followup_sd_ratio_median))
    log_sd = pm.Data("followup_sd_ratio_log_sd", float(spec.scale.followup_sd_ratio_log_sd))
    z_followup = pm.Normal("z_followup_sd_ratio", 0.0, 1.0, dims="outcome")
    r = pm.Deterministic("followup_sd_ratio", pt.exp(log_median + log_sd * z_followup), dims="outcome")
    change_sd_ratio = sd_ratio * pt.sqrt(1 + r**2 - 2 * rho * r)
    pm.Deterministic("change_sd_ratio", change_sd_ratio, dims="outcome")
    forms = pt.stack([change_sd_ratio, sd_ratio * r, sd_ratio * r * pt.sqrt(1 - rho**2)])
    one_hot = np.array([float(t == spec.thresholds.between_test) for t in BETWEEN_TESTS])
    weights = pm.Data("threshold_between_test", one_hot)
    between_sd_ratio = pm.Deterministic("between_sd_ratio", (weights[:, None] * forms).sum(0), dims="outcome")
    return change_sd_ratio, between_sd_ratio


def add_threshold_terms(inputs, spec, design: pd.DataFrame, delta, change, rho, R_time, R_out) -> None:
    """The likelihood of the threshold statements ``design`` describes (:func:`threshold_design`).

    Every statement's noncentrality (``threshold_noncentrality``) and log P(event) (``threshold_log_prob``);
    the within-arm statements enter as independent events, the between-arm ones jointly
    (:func:`_add_joint_between_term`).
    """
    n_out = len(inputs.coords["outcome"])
    change_sd_ratio, between_sd_ratio = statistic_sd_ratios(spec, rho, n_out)
    nodes, log_w = _quadrature(design["df"], spec.thresholds.quadrature_nodes)
    t_idx = design["time_index"].to_numpy()
    o_idx = design["outcome_index"].to_numpy()
    between = (design["comparison"] == "between").to_numpy()
    effect = pt.switch(
        between,
        delta[t_idx, o_idx],
        change[np.clip(design["arm_index"].to_numpy(), 0, None), t_idx, o_idx],
    )
    se_factor = pm.Data("threshold_se_factor", design["se_factor"].to_numpy(dtype=float))
    crit = pm.Data("threshold_crit", design["crit"].to_numpy(dtype=float))
    nodes = pm.Data("threshold_nodes", nodes)
    log_w = pm.Data("threshold_log_weights", log_w)
    sd_ratio = pt.switch(between, between_sd_ratio[o_idx], change_sd_ratio[o_idx])
    lam = pm.Deterministic("threshold_noncentrality", effect / (sd_ratio * se_factor), dims="threshold_row")
    kinds = design["kind"].to_numpy()
    # event kinds as data (spec thresholds.kinds_as_data): one compiled model serves every design
    # with the same rows, whichever statements are P<alpha or P>alpha (coverage studies)
    kind_code = (
        pm.Data("threshold_kind", np.array([EVENT_KIND_CODES[k] for k in kinds], dtype="int64"))
        if spec.thresholds.kinds_as_data
        else None
    )
    events = _StatementEvents(kinds, kind_code, lam, crit, nodes, log_w)
    # per-statement log P(event) of every statement: the pointwise log-likelihood and the posterior
    # predictive replicate (a Deterministic, so nutpie evaluates it once per draw, not per gradient)
    pm.Deterministic("threshold_log_prob", events.log_probs(np.arange(len(design))), dims="threshold_row")
    joint = joint_statement_design(inputs, spec, design)
    if joint is not None:  # every statement one event (spec thresholds.statement_dependence)
        add_joint_statement_term(joint, design, change, change_sd_ratio, crit, R_time, R_out, kind_code)
        return
    between_rows = np.flatnonzero(between)
    within_rows = np.flatnonzero(~between)
    if len(within_rows):
        # the likelihood of within-arm statements: only their rows enter the gradient
        pm.Potential("threshold_within_likelihood", events.log_probs(within_rows).sum())
    if len(between_rows):
        _add_joint_between_term(
            design.iloc[between_rows],
            lam[between_rows],
            crit[between_rows],
            R_time,
            R_out,
            None if kind_code is None else kind_code[between_rows],
        )


def _quadrature(dfs: pd.Series, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """The chi quadrature (:func:`chi_nodes`) of every statement's df, shape (rows, nodes) each."""
    nodes = np.empty((len(dfs), n_nodes))
    log_w = np.empty((len(dfs), n_nodes))
    for i, dof in enumerate(dfs):
        nodes[i], log_w[i] = chi_nodes(float(dof), n_nodes)
    return nodes, log_w


@dataclass(frozen=True)
class _StatementEvents:
    """What log P(event) of statement rows needs: the event kinds (``kind_code`` when held as data,
    else None and ``kinds`` fixed in the graph), noncentrality, critical values and quadrature."""

    kinds: np.ndarray
    kind_code: object
    lam: object
    crit: object
    nodes: object
    log_w: object

    def log_probs(self, rows: np.ndarray):
        """log P(event) of the statements ``rows`` (positions in the design)."""
        lam, crit, nodes, log_w = self.lam, self.crit, self.nodes, self.log_w
        if self.kind_code is not None:
            return log_prob_event_coded(self.kind_code[rows], lam[rows], crit[rows], nodes[rows], log_w[rows])
        out = pt.zeros(len(rows))
        for kind in EVENT_KIND_CODES:
            sub = np.flatnonzero(self.kinds[rows] == kind)
            if len(sub):
                r = rows[sub]
                out = pt.set_subtensor(out[sub], log_prob_event(kind, lam[r], crit[r], nodes[r], log_w[r]))
        return out


def _add_joint_between_term(design: pd.DataFrame, lam, crit, R_time, R_out, kind_code=None) -> None:
    r"""Between-arm statements of different cells jointly, by data augmentation.

    The test statistics of different cells are computed on the same patients, so they are
    correlated (:math:`R = R_{time} \otimes R_{outcome}` on the cells): treating eight "P>0.05"
    statements as independent evidence would overstate what the abstract says. With
    :math:`T_k = (Z_k + \lambda_k) / S_k`, :math:`Z \sim MVN(0, R)`, :math:`S_k^2 \sim \chi^2_{df}/df`,
    the statements are the event that :math:`u = Z + \lambda` lies in a box (e.g.
    :math:`|u_k| < c_k S_k`). Sampling :math:`u` inside the box (an interval transform with its
    Jacobian) with density :math:`MVN(u; \lambda, R)`, and :math:`S_k` from its prior, integrates
    exactly to :math:`P(event \mid \lambda, R)`. (The :math:`S_k` are taken as independent across
    cells; for df >= 20 they are all close to 1.)
    """
    k = len(design)
    dfs = design["df"].to_numpy(dtype=float)
    finite = np.isfinite(dfs)
    scale = pt.ones(k)
    if finite.any():
        # the degrees of freedom as data: a sweep over the share analysed (which changes them) reuses a compile
        df_data = pm.Data("threshold_chi2_df", dfs[finite])
        chi2 = pm.ChiSquared("threshold_chi2", nu=df_data, shape=int(finite.sum()))
        scale = pt.set_subtensor(scale[np.flatnonzero(finite)], pt.sqrt(chi2 / df_data))
    raw = pm.Flat("threshold_latent", shape=k)
    bound = crit * scale
    if kind_code is None:
        kinds = design["kind"].to_numpy()
        is_inside, is_below = kinds == "inside", kinds == "below"
    else:  # event kinds as data (codes of EVENT_KIND_CODES)
        is_inside = pt.eq(kind_code, EVENT_KIND_CODES["inside"])
        is_below = pt.eq(kind_code, EVENT_KIND_CODES["below"])
    # u = bound * (2 sigmoid(raw) - 1) = bound * tanh(raw / 2); log-Jacobian in stable form
    inside_u = bound * pt.tanh(raw / 2)
    inside_jac = pt.log(2 * bound) - pt.softplus(-raw) - pt.softplus(raw)
    below_u, above_u = -bound - pt.exp(raw), bound + pt.exp(raw)
    u = pt.switch(is_inside, inside_u, pt.switch(is_below, below_u, above_u))
    log_jac = pt.switch(is_inside, inside_jac, raw)
    t_idx = design["time_index"].to_numpy()
    o_idx = design["outcome_index"].to_numpy()
    corr = pm.Deterministic(
        "threshold_between_corr",
        R_time[t_idx[:, None], t_idx[None, :]] * R_out[o_idx[:, None], o_idx[None, :]],
        dims=("threshold_between_row", "threshold_between_row_other"),
    )
    mvn = pm.logp(pm.MvNormal.dist(mu=lam, cov=corr), u)
    pm.Potential("threshold_between_likelihood", mvn + log_jac.sum())
