r"""The hierarchical change model (DESIGN section 3): inputs, likelihood terms and the PyMC builder.

Notation. Arms :math:`a \in \{ref, new\}`, follow-up times :math:`t`, outcomes :math:`o`. All latent
quantities are in standardized units: natural units divided by the outcome's scale :math:`s_o`
(the pooled baseline SD when the data give it, otherwise the study's cited ``reference_sd``).
Change is follow-up minus baseline; the sign is kept natural, so for a "lower is better" outcome a
negative change is an improvement and a negative treatment difference favours the new arm.

Latent structure (non-centred):

.. math::

    \theta_{ref,t,o} &= \mu_t + \sigma_\theta z^\theta_{t,o}, \qquad
        \mu_t \sim N(0, s_\mu^2),\ \sigma_\theta \sim N^+(0, s_\theta^2) \\
    \delta_{t,o} &= \Delta_t + \tau z^\delta_{t,o}, \qquad
        \Delta_t \sim \text{prior set},\ \tau \sim N^+(0, s_\tau^2) \\
    \theta_{new,t,o} &= \theta_{ref,t,o} + \delta_{t,o}, \qquad
        \delta^{nat}_{t,o} = s_o\,\delta_{t,o}

With a single outcome the outcome deviations are not identified and are dropped
(:math:`\delta_{t} = \Delta_t`, :math:`\theta_{ref,t} = \mu_t`). When a study's only evidence is arm
summaries, or only patient data, the deviations :math:`z` are integrated out analytically and drawn
from their exact conditional normal (``change_parameterisation = "marginalised"``:
:func:`_add_marginal_arm_summary_terms`, :func:`_marginal_ipd_change`); the sampler then sees no
funnel between :math:`\sigma_\theta`, :math:`\tau` and the deviations.

Likelihood terms, each cell (t, o) taking its between-arm evidence from one level
(``Study.evidence_by_cell``):

* ``arm_summary``: in arm :math:`a` the vector of observed mean changes over its cells is
  :math:`\bar y_a \sim MVN(\theta_a, D_a (R_{time} \otimes R_{outcome}) D_a)`, with
  :math:`D_a = diag(\sigma^c_k / \sqrt{n_k})`, :math:`R_{time}` exchangeable with
  :math:`r_{time} \sim Beta`, :math:`R_{outcome} \sim LKJ(\eta)`. The true change SD
  :math:`\sigma^c` is a parameter: from a reported change SD, or
  :math:`\sqrt{\sigma_b^2 + \sigma_f^2 - 2\rho_o\sigma_b\sigma_f}` from baseline and follow-up SDs with
  an uncertain correlation :math:`\rho_o \sim Beta`. Reported SDs are estimates:
  :math:`(n-1)s^2/\sigma^2 \sim \chi^2_{n-1}`, i.e. :math:`s^2 \sim Gamma((n-1)/2, (n-1)/(2\sigma^2))`.
  (Deviation from a full Kronecker structure: when cells have different n, the correlation of two
  cells' means is taken as :math:`R_{kk'}`, ignoring the partial overlap of their patients.)
* ``contrast``: :math:`\hat d \sim N(\delta^{nat}_{t,o}, SE^2)` with SE from the conversions module.
  A difference of follow-up means or an ANCOVA estimate has the same expectation as the
  difference in change under randomisation.
* ``threshold``: a reported "P>alpha" between arms is the event :math:`|T| < c` with
  :math:`c = t_{1-\alpha/2, df}`; "P<alpha" in a stated direction is :math:`T < -c` or :math:`T > c`.
  :math:`T` is noncentral t with noncentrality
  :math:`\lambda = \delta_{t,o} / (r_o \sqrt{2(1-\rho_o)} \sqrt{1/n_1 + 1/n_2})` between arms
  (two-sample t on change; Welch uses the Welch-Satterthwaite df; ``normal`` uses df = infinity) and
  :math:`\lambda = \theta_{a,t,o} \sqrt{n_a} / (r_o \sqrt{2(1-\rho_o)})` within an arm (paired t),
  where :math:`r_o` is the ratio of the trial's SD to the reference SD,
  :math:`\log r_o \sim N(0, s_r^2)`, and follow-up and baseline SDs are taken as equal. Each
  statement adds :math:`\log P(event)` (a censored likelihood), computed as
  :math:`\log E_S[\Phi(\cdot)]` over :math:`S = \sqrt{\chi^2_{df}/df}` with generalized
  Gauss-Laguerre quadrature and log-space differences of normal CDFs (no underflow).
  Unknown per-arm n with a known total: equal split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.dist_math import normal_lcdf
from scipy import special, stats

from bayes_stenosis.errors import InputError
from bayes_stenosis.model.terms.ipd import (
    IPDInputs,
    add_ipd_followups,
    add_ipd_terms,
    ipd_followup_patterns,
    ipd_scale,
    prepare_ipd_inputs,
)
from bayes_stenosis.spec import ModelSpec, ResolvedPrior
from bayes_stenosis.study import Study, contrast_standard_errors

# ---------------------------------------------------------------------------------------------
# Inputs: everything the builder needs, as plain numpy arrays (pure, testable without PyMC)
# ---------------------------------------------------------------------------------------------


@dataclass
class ArmSummaryBlock:
    """The arm-summary cells of one arm."""

    arm_index: int
    time_index: np.ndarray
    outcome_index: np.ndarray
    mean_change: np.ndarray  # standardized
    n: np.ndarray
    # change-form cells: reported change SD (standardized), NaN for score-form cells
    sd_change: np.ndarray
    # score-form cells: reported baseline/follow-up SDs and n (standardized), NaN for change-form
    sd_baseline: np.ndarray
    n_baseline: np.ndarray
    sd_followup: np.ndarray
    rows: list[str] = field(default_factory=list)


@dataclass
class ModelInputs:
    coords: dict[str, list]
    scale: np.ndarray  # per outcome, natural units per standardized unit
    scale_source: list[str]
    margins: np.ndarray  # natural units
    margin_std: np.ndarray  # standardized
    new_better_sign: float  # -1 when a negative delta favours the new arm
    direction: list[str]
    instruments: list[str]
    arm_sizes: dict[str, float]
    arm_size_source: str
    evidence_by_cell: pd.DataFrame
    arm_blocks: list[ArmSummaryBlock]
    contrasts: pd.DataFrame
    thresholds: pd.DataFrame
    ipd: IPDInputs | None = None  # patient-level data (model_ipd.py)


def _study_file(study: Study) -> str:
    return str(study.folder / "study.toml")


def prepare_inputs(study: Study, spec: ModelSpec, margins: dict[str, float] | None = None) -> ModelInputs:
    """Turn a validated study into the arrays the model uses (standardized where noted).

    Parameters
    ----------
    margins
        Per-outcome margin overrides in natural units; others come from ``study.toml``.
    """
    outcomes, times, arms = study.outcomes, study.times, study.arms
    cells = study.evidence_by_cell()
    ipd_scales = ipd_scale(study) if len(study.evidence["ipd"]) else {}
    usable = study.usable_arm_summaries()
    baseline = study.meta.times.baseline

    # --- scale per outcome: pooled baseline SD from the data, else the cited reference SD -----
    scale, scale_source = [], []
    for o in outcomes:
        base = usable[(usable.outcome == o) & (usable.kind == "score") & (usable.time == baseline)]
        if o in ipd_scales:
            scale.append(ipd_scales[o][0])
            scale_source.append("pooled baseline SD from ipd.csv")
        elif set(base.arm) == set(arms):
            dof = (base.n - 1).to_numpy()
            pooled = math.sqrt(float(np.sum(dof * base.sd.to_numpy() ** 2) / np.sum(dof)))
            scale.append(pooled)
            scale_source.append("pooled baseline SD from arm_summaries.csv")
        elif study.outcome(o).reference_sd is not None:
            scale.append(float(study.outcome(o).reference_sd))
            scale_source.append("reference_sd: " + study.outcome(o).reference_sd_source)
        else:
            raise InputError(
                _study_file(study),
                f"outcome {o} needs a reference SD to put the model on a standardized scale "
                "(the data give no baseline SDs for both arms): add reference_sd and reference_sd_source",
                field=f"outcomes.{o}.reference_sd",
            )
    scale_arr = np.asarray(scale, dtype=float)

    # --- margins --------------------------------------------------------------------------------
    margins = dict(margins or {})
    unknown = set(margins) - set(outcomes)
    if unknown:
        raise InputError(None, f"margin override for unknown outcome(s): {', '.join(sorted(unknown))}")
    margin_vals = []
    for o in outcomes:
        m = margins.get(o, study.outcome(o).margin)
        if m is None:
            raise InputError(
                _study_file(study),
                f"outcome {o} has no equivalence margin: add margin and margin_source (or pass --margin {o}=VALUE)",
                field=f"outcomes.{o}.margin",
            )
        if not m > 0:
            raise InputError(None, f"margin for {o} must be > 0 (got {m})")
        margin_vals.append(float(m))
    margin_arr = np.asarray(margin_vals)
    directions = [study.outcome(o).direction for o in outcomes]
    if len(set(directions)) != 1:
        raise InputError(
            _study_file(study),
            "all outcomes must share one direction in this version",
            field="outcomes",
        )
    new_better_sign = -1.0 if directions[0] == "lower_is_better" else 1.0

    # --- arm sizes --------------------------------------------------------------------------------
    arm_sizes, size_source = study.randomised_arm_sizes()

    # --- arm summary blocks ---------------------------------------------------------------------
    arm_cells = cells[cells.evidence == "arm_summary"]
    blocks = []
    for a_idx, a in enumerate(arms):
        rows = usable[usable.arm == a]
        t_idx, o_idx, mean, n, sdc, sdb, nb, sdf, labels = [], [], [], [], [], [], [], [], []
        for rec in arm_cells.to_dict("records"):
            t, o = rec["time"], rec["outcome"]
            s = scale_arr[outcomes.index(o)]
            change = rows[(rows.outcome == o) & (rows.kind == "change") & (rows.time == t)]
            if len(change):
                r = change.iloc[0]
                mean.append(r["mean"] / s)
                n.append(r["n"])
                sdc.append(r["sd"] / s)
                sdb.append(np.nan), nb.append(np.nan), sdf.append(np.nan)
                labels.append(f"arm_summaries.csv row {r['row']}")
            else:
                b = rows[(rows.outcome == o) & (rows.kind == "score") & (rows.time == baseline)].iloc[0]
                f = rows[(rows.outcome == o) & (rows.kind == "score") & (rows.time == t)].iloc[0]
                mean.append((f["mean"] - b["mean"]) / s)
                n.append(f["n"])
                sdc.append(np.nan)
                sdb.append(b["sd"] / s), nb.append(b["n"]), sdf.append(f["sd"] / s)
                labels.append(f"arm_summaries.csv rows {b['row']}, {f['row']}")
            t_idx.append(times.index(t))
            o_idx.append(outcomes.index(o))
        if t_idx:
            blocks.append(
                ArmSummaryBlock(
                    arm_index=a_idx,
                    time_index=np.asarray(t_idx),
                    outcome_index=np.asarray(o_idx),
                    mean_change=np.asarray(mean, dtype=float),
                    n=np.asarray(n, dtype=float),
                    sd_change=np.asarray(sdc, dtype=float),
                    sd_baseline=np.asarray(sdb, dtype=float),
                    n_baseline=np.asarray(nb, dtype=float),
                    sd_followup=np.asarray(sdf, dtype=float),
                    rows=labels,
                )
            )

    # --- contrasts ------------------------------------------------------------------------------
    contrasts = contrast_standard_errors(study)
    contrast_cells = set(map(tuple, cells.loc[cells.evidence == "contrast", ["time", "outcome"]].values))
    contrasts = contrasts[[(t, o) in contrast_cells for t, o in contrasts[["time", "outcome"]].values]]

    # --- thresholds -----------------------------------------------------------------------------
    thr_cells = set(map(tuple, cells.loc[cells.evidence == "threshold", ["time", "outcome"]].values))
    thr = study.evidence["threshold"]
    thr = thr[[(t, o) in thr_cells for t, o in thr[["time", "outcome"]].values]].copy()
    if len(thr) and not arm_sizes:
        raise InputError(
            _study_file(study),
            "threshold statements need the arm sizes: give arms.<arm>.n_randomised or study.n_randomised_total",
            field="study.n_randomised_total",
        )

    return ModelInputs(
        coords={"arm": arms, "time": times, "outcome": outcomes},
        scale=scale_arr,
        scale_source=scale_source,
        margins=margin_arr,
        margin_std=margin_arr / scale_arr,
        new_better_sign=new_better_sign,
        direction=directions,
        instruments=[study.outcome(o).instrument for o in outcomes],
        arm_sizes=arm_sizes,
        arm_size_source=size_source,
        evidence_by_cell=cells,
        arm_blocks=blocks,
        contrasts=contrasts.reset_index(drop=True),
        thresholds=thr.reset_index(drop=True),
        ipd=prepare_ipd_inputs(study, outcomes, times, arms),
    )


def resolve_prior(spec: ModelSpec, prior_set: str, inputs: ModelInputs) -> ResolvedPrior:
    """The concrete prior on Delta[t] for a named prior set and this study's margins."""
    if prior_set not in spec.prior_sets:
        hint = ""
        if prior_set == "sceptical":
            hint = "; 'sceptical' was renamed 'small_difference' (it favours equivalence)"
        raise InputError(None, f"unknown prior set {prior_set!r} (the spec has: {', '.join(spec.prior_sets)}){hint}")
    reference_margin = float(np.min(inputs.margin_std))
    return spec.prior_sets[prior_set].resolve(reference_margin, inputs.new_better_sign, spec.hierarchy.outcome_pooling)


# ---------------------------------------------------------------------------------------------
# Noncentral-t event probabilities (shared by the model and the tests)
# ---------------------------------------------------------------------------------------------


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


EVENT_KIND_CODES = {"inside": 0, "below": 1, "above": 2}
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
    ref, new = arms[0], arms[1]
    lower_better = inputs.new_better_sign < 0
    for rec in inputs.thresholds.to_dict("records"):
        if rec["comparison"] == "between":
            n1, n2 = inputs.arm_sizes[new], inputs.arm_sizes[ref]
            se_factor = math.sqrt(1 / n1 + 1 / n2)
            if rec["test"] == "two_sample_t":
                dof = n1 + n2 - 2
            elif rec["test"] == "welch_t":
                a, b = 1 / n1, 1 / n2
                dof = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
            else:
                dof = math.inf
            if rec["relation"] == ">":
                kind = "inside"
            else:
                new_better = rec["direction"] == "favours_new"
                # T = (new - ref) / SE; the new arm is better when T is negative (lower is better)
                kind = "below" if new_better == lower_better else "above"
            arm_index = -1
        else:
            n_a = inputs.arm_sizes[rec["arm"]]
            se_factor = 1 / math.sqrt(n_a)
            dof = n_a - 1 if rec["test"] == "paired_t" else math.inf
            if rec["relation"] == ">":
                kind = "inside"
            else:
                improved = rec["direction"] == "improvement"
                kind = "below" if improved == lower_better else "above"
            arm_index = arms.index(rec["arm"])
        crit = (
            float(stats.t.ppf(1 - rec["alpha"] / 2, dof))
            if np.isfinite(dof)
            else float(stats.norm.ppf(1 - rec["alpha"] / 2))
        )
        out.append(
            {
                "row": rec["row"],
                "comparison": rec["comparison"],
                "kind": kind,
                "df": dof,
                "crit": crit,
                "se_factor": se_factor,
                "arm_index": arm_index,
                "time_index": inputs.coords["time"].index(rec["time"]),
                "outcome_index": inputs.coords["outcome"].index(rec["outcome"]),
            }
        )
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------------------------
# The builder
# ---------------------------------------------------------------------------------------------


def _prior_rv(name: str, prior: ResolvedPrior, dims):
    """The prior on ``name`` with its hyperparameters as data containers ``prior_{name}_mu``,
    ``prior_{name}_sigma`` (and ``prior_{name}_nu``): one compiled model of a family serves every
    prior set of that family (the sensitivity sweep swaps them with nutpie's ``with_data``)."""
    mu = pm.Data(f"prior_{name}_mu", float(prior.mu))
    sigma = pm.Data(f"prior_{name}_sigma", float(prior.sigma))
    if prior.family == "student_t":
        nu = pm.Data(f"prior_{name}_nu", float(prior.nu))
        return pm.StudentT(name, nu=nu, mu=mu, sigma=sigma, dims=dims)
    return pm.Normal(name, mu=mu, sigma=sigma, dims=dims)


def marginalises_change(inputs: ModelInputs, spec: ModelSpec, design: pd.DataFrame | None = None) -> str | None:
    """Which evidence the outcome deviations of the change are integrated out against, if any.

    ``"arm_summary"`` (:func:`_add_marginal_arm_summary_terms`) or ``"ipd"``
    (:func:`_marginal_ipd_change`) when ``change_parameterisation = "marginalised"``, there are two or
    more outcomes and that level is the study's only evidence (with patient effects integrated out
    for IPD); ``None`` otherwise (non-centred or centred deviations).
    """
    if spec.hierarchy.change_parameterisation != "marginalised" or len(inputs.coords["outcome"]) < 2:
        return None
    design = threshold_design(inputs, spec) if design is None else design
    if len(design) or len(inputs.contrasts):
        return None
    ipd = getattr(inputs, "ipd", None)
    if inputs.arm_blocks and ipd is None:
        return "arm_summary"
    if ipd is not None and not inputs.arm_blocks and spec.ipd.patient_effects == "marginal":
        return "ipd"
    return None


def build_model(
    inputs: ModelInputs, spec: ModelSpec, prior: ResolvedPrior, *, prior_sampling: bool = False
) -> pm.Model:
    """Build the PyMC model; pure: reads its arguments, changes nothing, samples nothing.

    Parameters
    ----------
    inputs
        From :func:`prepare_inputs`.
    spec
        The validated model spec (hyperpriors, correlation priors, quadrature).
    prior
        The resolved prior on ``Delta[time]`` (:func:`resolve_prior`).
    prior_sampling
        Build the model for forward (prior and prior predictive) sampling. It differs only where
        the deviations are integrated out against patient data (:func:`marginalises_change`): that
        form draws them from their posterior given the data containers, so forward draws from it
        would not be prior draws; the non-centred form, the same joint distribution, is built
        instead (:func:`prior_sampling_model`).

    Returns
    -------
    pm.Model
        With coords ``arm``, ``time``, ``outcome`` (and ``threshold_row``, ``contrast_row`` when those
        terms exist). ``delta`` (standardized) and ``delta_natural`` are dims (time, outcome).
    """
    coords = {k: list(v) for k, v in inputs.coords.items()}
    n_out = len(coords["outcome"])
    design = threshold_design(inputs, spec)
    if len(design):
        coords["threshold_row"] = [int(r) for r in design["row"]]
    if len(inputs.contrasts):
        coords["contrast_row"] = [int(r) for r in inputs.contrasts["row"]]
    h = spec.hierarchy
    # "marginalised": where every term that involves the outcome deviations is Gaussian, they are
    # integrated out analytically: arm summaries only (_add_marginal_arm_summary_terms) or patient
    # data only (_marginal_ipd_change, unless prior_sampling); with contrasts, thresholds or a
    # mix of levels the non-centred form is used.
    against = marginalises_change(inputs, spec, design)
    marginalised = against == "arm_summary"
    marginalised_ipd = against == "ipd" and not prior_sampling

    with pm.Model(coords=coords) as model:
        # --- latent change in the reference arm and the treatment difference -------------------
        mu_change = pm.Normal("mu_change", 0.0, h.mu_change_sigma, dims="time")
        # no pooling across outcomes: one prior draw per cell; partial pooling: Delta[t] + tau z[t, o]
        pooled = prior.outcome_pooling == "partial" or n_out == 1
        Delta = _prior_rv("Delta", prior, dims="time" if pooled else ("time", "outcome"))
        Delta_cells = Delta[:, None] if pooled else Delta  # broadcasts to (time, outcome)
        if n_out > 1:
            if h.sigma_change_prior == "fixed":
                sigma_change = pt.constant(h.sigma_change_scale)
            elif h.sigma_change_prior == "gamma2":
                sigma_change = pm.Gamma("sigma_change", alpha=2.0, beta=2.0 / h.sigma_change_scale)
            else:
                sigma_change = pm.HalfNormal("sigma_change", h.sigma_change_scale)
            if marginalised or marginalised_ipd:
                theta_ref = delta = None  # integrated out; drawn after the likelihood's terms
            elif h.change_parameterisation == "centred":
                theta_ref = pm.Normal("theta_ref", mu_change[:, None], sigma_change, dims=("time", "outcome"))
            else:
                z_theta = pm.Normal("z_theta", 0.0, 1.0, dims=("time", "outcome"))
                theta_ref = mu_change[:, None] + sigma_change * z_theta
            tau = None
            if pooled:  # the scale is a data container: a sweep over it reuses one compile
                tau = pm.HalfNormal("tau", pm.Data("tau_scale", float(h.tau_scale)))
            if not (marginalised or marginalised_ipd):
                if pooled:
                    z_delta = pm.Normal("z_delta", 0.0, 1.0, dims=("time", "outcome"))
                    delta = Delta_cells + tau * z_delta
                else:
                    delta = Delta_cells
        else:
            theta_ref = pt.shape_padright(mu_change)
            delta = pt.shape_padright(Delta)

        def latent_outputs(theta_ref, delta):
            delta = pm.Deterministic("delta", delta, dims=("time", "outcome"))
            change = pm.Deterministic(
                "change", pt.stack([theta_ref, theta_ref + delta]), dims=("arm", "time", "outcome")
            )
            pm.Deterministic("delta_natural", delta * inputs.scale[None, :], dims=("time", "outcome"))
            pm.Deterministic("change_natural", change * inputs.scale[None, None, :], dims=("arm", "time", "outcome"))
            return delta, change

        if not (marginalised or marginalised_ipd):
            delta, change = latent_outputs(theta_ref, delta)

        # --- baseline-follow-up correlation per outcome ---------------------------------------
        needs_rho = len(design) > 0 or any(np.isnan(b.sd_change).any() for b in inputs.arm_blocks)
        rho = None
        if needs_rho:
            fixed = spec.correlation.fixed_baseline_followup
            if fixed is not None:
                # a data container, so a sweep over fixed values reuses one compiled model
                rho = pm.Data("rho_fixed", np.full(n_out, float(fixed)), dims="outcome")
            else:
                priors = [spec.correlation.baseline_followup(i) for i in inputs.instruments]
                rho = pm.Beta(
                    "rho",
                    alpha=np.array([p.alpha for p in priors]),
                    beta=np.array([p.beta for p in priors]),
                    dims="outcome",
                )

        R_time = R_out = None
        if inputs.arm_blocks or len(design) or len(inputs.contrasts) > 1:
            R_time, R_out = _error_correlations(inputs, spec, design)
        if marginalised:
            delta, change = latent_outputs(
                *_add_marginal_arm_summary_terms(
                    inputs, spec, mu_change, Delta_cells, sigma_change, tau, rho, R_time, R_out
                )
            )
        elif inputs.arm_blocks:
            _add_arm_summary_terms(model, inputs, spec, change, rho, R_time, R_out)
        if len(inputs.contrasts):
            _add_contrast_terms(inputs, delta, R_time if len(inputs.contrasts) > 1 else None, R_out)
        if len(design):
            _add_threshold_terms(inputs, spec, design, delta, change, rho, R_time, R_out)
        if marginalised_ipd:
            patterns = ipd_followup_patterns(
                inputs.ipd, spec.ipd, eta=spec.correlation.outcome_lkj_eta, sd_log_sigma=spec.scale.sd_log_sigma
            )
            delta, change = latent_outputs(
                *_marginal_ipd_change(inputs, patterns, mu_change, Delta_cells, sigma_change, tau)
            )
            add_ipd_followups(inputs.ipd, patterns, change)
        elif inputs.ipd is not None:
            add_ipd_terms(
                inputs.ipd,
                spec.ipd,
                change,
                eta=spec.correlation.outcome_lkj_eta,
                sd_log_sigma=spec.scale.sd_log_sigma,
            )
    return model


def lkj_correlation(name: str, n: int, eta: float):
    r"""An n x n correlation matrix with an LKJ(eta) prior, built from canonical partial correlations.

    The partial correlation of variables i > j given variables 0..j-1 is
    :math:`2 B - 1` with :math:`B \sim Beta(\beta_j, \beta_j)`, :math:`\beta_j = \eta + (n - 2 - j)/2`
    (Lewandowski, Kurowicka & Joe 2009); the Cholesky factor follows from them, so the matrix is
    positive definite by construction (the same construction as Stan's ``cholesky_factor_corr``).
    Stored as ``name`` (the matrix) and ``{name}_cpc`` (the partial correlations on (0, 1)).
    """
    pairs = [(i, j) for j in range(n - 1) for i in range(j + 1, n)]
    beta = np.array([eta + (n - 2 - j) / 2 for _, j in pairs])
    cpc = 2 * pm.Beta(f"{name}_cpc", alpha=beta, beta=beta, shape=len(pairs)) - 1
    z = {pair: cpc[k] for k, pair in enumerate(pairs)}
    rows = []
    for i in range(n):
        row, remaining = [], pt.constant(1.0)
        for j in range(i):
            value = z[(i, j)] * pt.sqrt(remaining)
            row.append(value)
            remaining = remaining - value**2
        row.append(pt.sqrt(remaining))
        row.extend([pt.constant(0.0)] * (n - i - 1))
        rows.append(pt.stack(row))
    chol = pt.stack(rows)
    return pm.Deterministic(name, chol @ chol.T)


def _error_correlations(inputs: ModelInputs, spec: ModelSpec, design: pd.DataFrame):
    """Correlation across follow-up times and across outcomes of sampling errors within patients.

    Shared by the arm-summary term (errors of an arm's mean changes) and the joint threshold term
    (the between-arm test statistics of different cells, computed on the same patients). Returns
    full-size (time x time, outcome x outcome) matrices; r_time / r_outcome exist only where two or
    more times / outcomes carry such evidence.
    """
    n_time, n_out = len(inputs.coords["time"]), len(inputs.coords["outcome"])
    times_used = {int(t) for b in inputs.arm_blocks for t in b.time_index}
    outs_used = {int(o) for b in inputs.arm_blocks for o in b.outcome_index}
    if len(design):
        between = design[design["comparison"] == "between"]
        times_used |= set(between["time_index"].astype(int))
        outs_used |= set(between["outcome_index"].astype(int))
    if len(inputs.contrasts) > 1:
        times_used |= {inputs.coords["time"].index(t) for t in inputs.contrasts["time"]}
        outs_used |= {inputs.coords["outcome"].index(o) for o in inputs.contrasts["outcome"]}
    times_used, outs_used = sorted(times_used), sorted(outs_used)
    if len(times_used) > 1:
        p = spec.correlation.time
        cap = spec.correlation.max_error_correlation
        r_time = pm.Deterministic("r_time", cap * pm.Beta("r_time_unit", alpha=p.alpha, beta=p.beta))
        R_time = (1 - r_time) * pt.eye(n_time) + r_time * pt.ones((n_time, n_time))
    else:
        R_time = pt.eye(n_time)
    if len(outs_used) > 1 and spec.correlation.outcome_structure != "independent":
        k = len(outs_used)
        if spec.correlation.outcome_structure == "lkj":
            R_out_used = lkj_correlation("outcome_error_corr", k, spec.correlation.outcome_lkj_eta)
        else:
            p = spec.correlation.outcome
            cap = spec.correlation.max_error_correlation
            r_out = pm.Deterministic("r_outcome", cap * pm.Beta("r_outcome_unit", alpha=p.alpha, beta=p.beta))
            R_out_used = (1 - r_out) * pt.eye(k) + r_out * pt.ones((k, k))
        idx = np.asarray(outs_used)
        R_out = pt.set_subtensor(pt.eye(n_out)[idx[:, None], idx[None, :]], R_out_used)
    else:
        R_out = pt.eye(n_out)
    return R_time, R_out


def _arm_block_error_cov(inputs: ModelInputs, spec: ModelSpec, block: ArmSummaryBlock, rho, R_time, R_out):
    """Covariance of one arm's mean-change sampling errors, and its observed-means container.

    :math:`D (R_{time} \\otimes R_{outcome}) D` with :math:`D = diag(\\sigma^c_k/\\sqrt{n_k})`; the true
    change SDs :math:`\\sigma^c_k` are parameters informed by the reported SDs (:func:`_reported_sd`).
    """
    sd_sigma = spec.scale.sd_log_sigma
    name = inputs.coords["arm"][block.arm_index]
    k = len(block.time_index)
    is_change = ~np.isnan(block.sd_change)
    sigma_change = pt.zeros(k)
    n_all = pm.Data(f"n_{name}", block.n)
    if is_change.any():
        ic = np.flatnonzero(is_change)
        sd_c = _reported_sd(f"sd_change_{name}", n_all[ic], block.sd_change[ic], sd_sigma)
        sigma_change = pt.set_subtensor(sigma_change[ic], sd_c)
    if (~is_change).any():
        isc = np.flatnonzero(~is_change)
        # one baseline SD per outcome of this arm (observed once, at the first cell carrying
        # it), one follow-up SD per cell
        outs = block.outcome_index[isc]
        uniq, inv = np.unique(outs, return_inverse=True)
        first = np.array([np.flatnonzero(inv == u)[0] for u in range(len(uniq))])
        nb = pm.Data(f"n_baseline_{name}", block.n_baseline[isc][first])
        sd_b = _reported_sd(f"sd_baseline_{name}", nb, block.sd_baseline[isc][first], sd_sigma)
        sd_f = _reported_sd(f"sd_followup_{name}", n_all[isc], block.sd_followup[isc], sd_sigma)
        sb = sd_b[inv]
        r = rho[outs]
        sd_c_scores = pt.sqrt(sb**2 + sd_f**2 - 2 * r * sb * sd_f)
        sigma_change = pt.set_subtensor(sigma_change[isc], sd_c_scores)
    se = sigma_change / pt.sqrt(n_all)
    corr = (
        R_time[block.time_index[:, None], block.time_index[None, :]]
        * R_out[block.outcome_index[:, None], block.outcome_index[None, :]]
    )
    cov = se[:, None] * corr * se[None, :]
    observed = pm.Data(f"mean_change_{name}", block.mean_change)
    return cov, observed


def _add_arm_summary_terms(model, inputs: ModelInputs, spec: ModelSpec, change, rho, R_time, R_out) -> None:
    arms = inputs.coords["arm"]
    for block in inputs.arm_blocks:
        cov, observed = _arm_block_error_cov(inputs, spec, block, rho, R_time, R_out)
        mean = change[block.arm_index, block.time_index, block.outcome_index]
        pm.MvNormal(f"obs_mean_change_{arms[block.arm_index]}", mu=mean, cov=cov, observed=observed)


def _symmetric(matrix):
    return (matrix + matrix.T) / 2


def _add_marginal_arm_summary_terms(
    inputs: ModelInputs, spec: ModelSpec, mu_change, Delta_cells, sigma_change, tau, rho, R_time, R_out
):
    r"""Arm summaries with the outcome deviations of :math:`\theta_{ref}` and :math:`\delta` integrated out.

    Write the deviations as :math:`x = (z^\theta, z^\delta) \sim N(0, I)` (one pair per cell). Every
    observed mean change is linear in them: :math:`y = b + A x + e`, with
    :math:`b_k = \mu_{t_k} + [a_k = new]\,\Delta_{t_k}`, :math:`A = [\sigma_\theta M^\theta,\ \tau M^\delta]`
    (:math:`M` selects the cell, :math:`M^\delta` only in the new arm) and :math:`e \sim N(0, \Sigma)`,
    :math:`\Sigma` block-diagonal over arms (:func:`_arm_block_error_cov`). So exactly

    .. math::

        y \sim MVN(b,\ A A^T + \Sigma), \qquad
        x \mid y \sim N(P^{-1} A^T \Sigma^{-1} (y - b),\ P^{-1}), \quad P = I + A^T \Sigma^{-1} A .

    The likelihood is written per arm as :math:`p(y_{ref})\,p(y_{new} \mid y_{ref})` (same observed
    nodes as the conditional form), and :math:`x = P^{-1} A^T \Sigma^{-1}(y - b) + L_P^{-T} \varepsilon`
    with :math:`\varepsilon \sim N(0, I)` (``z_latent``) independent of the data: the sampler sees
    neither the funnel between :math:`\sigma_\theta` / :math:`\tau` and the deviations nor their
    posterior correlations, and :math:`\theta`, :math:`\delta` are exact posterior draws. In forward
    (prior predictive) sampling :math:`y` is the simulated replicate, so :math:`x` is then a draw
    from its prior, as it must be.

    Returns
    -------
    theta_ref, delta
        (time, outcome) tensors.
    """
    n_time, n_out = len(inputs.coords["time"]), len(inputs.coords["outcome"])
    n_cells = n_time * n_out
    n_dev = n_cells if tau is None else 2 * n_cells  # no delta deviations without outcome pooling
    Delta_full = pt.broadcast_to(Delta_cells, (n_time, n_out))
    arms = inputs.coords["arm"]
    blocks = sorted(inputs.arm_blocks, key=lambda b: b.arm_index)
    parts = []
    for block in blocks:
        cov, observed = _arm_block_error_cov(inputs, spec, block, rho, R_time, R_out)
        cell = block.time_index * n_out + block.outcome_index
        select = np.zeros((len(cell), n_cells))
        select[np.arange(len(cell)), cell] = 1.0
        is_new = float(block.arm_index == 1)
        design_matrix = deviation_design(sigma_change, tau, select, is_new)
        mean = mu_change[block.time_index] + is_new * Delta_full[block.time_index, block.outcome_index]
        parts.append((block, cov, observed, design_matrix, mean))

    # likelihood: the first arm marginally, the second given the first (chain rule)
    observed_rvs = []
    first_block, cov0, data0, a0, b0 = parts[0]
    marg0 = _symmetric(a0 @ a0.T + cov0)
    obs0 = pm.MvNormal(f"obs_mean_change_{arms[first_block.arm_index]}", mu=b0, cov=marg0, observed=data0)
    observed_rvs.append(obs0)
    if len(parts) == 2:
        block1, cov1, data1, a1, b1 = parts[1]
        chol0 = pt.linalg.cholesky(marg0)
        w = pt.linalg.solve_triangular(chol0, a0 @ a1.T, lower=True)  # L0^-1 C01
        u = pt.linalg.solve_triangular(chol0, obs0 - b0, lower=True)
        cond_mean = b1 + w.T @ u
        cond_cov = _symmetric(a1 @ a1.T + cov1 - w.T @ w)
        obs1 = pm.MvNormal(f"obs_mean_change_{arms[block1.arm_index]}", mu=cond_mean, cov=cond_cov, observed=data1)
        observed_rvs.append(obs1)

    # exact conditional draw of the deviations given the (observed or replicated) means
    precision = pt.eye(n_dev)
    shift = pt.zeros(n_dev)
    for (_, cov, _, a, b), y in zip(parts, observed_rvs, strict=True):
        chol = pt.linalg.cholesky(cov)
        w = pt.linalg.solve_triangular(chol, a, lower=True)
        r = pt.linalg.solve_triangular(chol, y - b, lower=True)
        precision = precision + w.T @ w
        shift = shift + w.T @ r
    x, _, _ = _conditional_deviations(precision, shift, n_dev)
    return _change_from_deviations(x, mu_change, Delta_cells, sigma_change, tau, n_time, n_out)


def deviation_design(sigma_change, tau, select: np.ndarray, is_new: float):
    """Columns of the deviations x = (z_theta, z_delta) in the cells ``select`` picks; without outcome
    pooling (``tau`` None) there are no delta deviations."""
    if tau is None:
        return sigma_change * select
    return pt.concatenate([sigma_change * select, tau * is_new * select], axis=1)


def _conditional_deviations(precision, shift, size: int):
    """x = P^-1 s + L_P^-T eps with eps ~ N(0, I) (``z_latent``): an exact draw of the deviations from
    their conditional normal N(P^-1 s, P^-1). Returns x, eps and the Cholesky factor L_P of P."""
    chol_p = pt.linalg.cholesky(_symmetric(precision))
    post_mean = pt.linalg.solve_triangular(chol_p.T, pt.linalg.solve_triangular(chol_p, shift, lower=True), lower=False)
    eps = pm.Normal("z_latent", 0.0, 1.0, shape=size)
    return post_mean + pt.linalg.solve_triangular(chol_p.T, eps, lower=False), eps, chol_p


def _change_from_deviations(x, mu_change, Delta_cells, sigma_change, tau, n_time: int, n_out: int):
    """theta_ref, delta (time, outcome) from the stacked deviations x = (z_theta, z_delta)."""
    n_cells = n_time * n_out
    theta_ref = mu_change[:, None] + sigma_change * x[:n_cells].reshape((n_time, n_out))
    if tau is None:
        return theta_ref, pt.broadcast_to(Delta_cells, (n_time, n_out))
    return theta_ref, Delta_cells + tau * x[n_cells:].reshape((n_time, n_out))


MARGINAL_IPD_POTENTIAL = "ipd_change_marginal"


def check_forward_sampling(model: pm.Model) -> None:
    """Refuse forward (prior) sampling of a model that draws the deviations given the data."""
    if MARGINAL_IPD_POTENTIAL in model.named_vars:
        raise ValueError(
            "this model integrates the outcome deviations out against patient data; draw prior samples "
            "from prior_sampling_model(...) (build_model(..., prior_sampling=True)) instead"
        )


def prior_sampling_model(inputs: ModelInputs, spec: ModelSpec, prior: ResolvedPrior, model: pm.Model | None = None):
    """The model to draw prior and prior predictive samples from: ``model`` itself (built if None)
    unless it integrates the deviations out against patient data (see :func:`build_model`)."""
    if marginalises_change(inputs, spec) == "ipd":
        return build_model(inputs, spec, prior, prior_sampling=True)
    return model if model is not None else build_model(inputs, spec, prior)


def _marginal_ipd_change(inputs: ModelInputs, patterns, mu_change, Delta_cells, sigma_change, tau):
    r"""Patient data with the outcome deviations of :math:`\theta_{ref}` and :math:`\delta` integrated out.

    As in :func:`_add_marginal_arm_summary_terms`, :math:`x = (z^\theta, z^\delta) \sim N(0, I)` and
    the change is linear in it: :math:`c_a = b_a + A_a x`, :math:`b_{a,t,o} = \mu_t + [a = new]\Delta_t`,
    :math:`A_a = [\sigma_\theta I,\ [a = new]\,\tau I]`. Patient :math:`i` of missingness pattern
    :math:`p` (observed cells :math:`S_p`, cholesky factor :math:`L_p` of :math:`V_{S_p S_p}`) has
    residual :math:`r_i = y_i - \text{offset}_i - b_{a_i}[S_p] \sim N(A_{a_i}[S_p]\,x, V_{S_p S_p})`, so
    given everything else :math:`x` is normal with

    .. math::

        P = I + \sum_{a,p} n_{a,p} W_{a,p}^T W_{a,p}, \quad
        s = \sum_{a,p} W_{a,p}^T L_p^{-1} \sum_{i \in (a,p)} r_i, \quad
        x \mid y \sim N(P^{-1}s, P^{-1}), \qquad W_{a,p} = L_p^{-1} A_a[S_p] .

    The sampler draws :math:`\varepsilon \sim N(0, I)` (``z_latent``) and
    :math:`x = P^{-1}s + L_P^{-T}\varepsilon`. The follow-up likelihood stays per patient given
    :math:`x` (pointwise log-likelihood and posterior predictive as in the non-centred model), and the
    potential ``ipd_change_marginal`` :math:`= -\tfrac12 x^Tx + \tfrac12\varepsilon^T\varepsilon - \sum
    \log (L_P)_{kk}` makes the joint density of the sampled :math:`(\phi, \varepsilon)` exactly
    :math:`p(y \mid \phi)\,N(\varepsilon; 0, I)` (:math:`\phi`: every other parameter):
    :math:`p(y \mid x, \phi) N(x; 0, I) = p(y \mid \phi) N(x; P^{-1}s, P^{-1})` and
    :math:`\log N(x; P^{-1}s, P^{-1}) = -\tfrac12\varepsilon^T\varepsilon + \tfrac12\log|P| + c`.
    The sampler sees neither the funnel of :math:`\sigma_\theta`, :math:`\tau` nor the deviations'
    posterior correlations. Forward sampling needs the non-centred model (:func:`prior_sampling_model`).

    Returns
    -------
    theta_ref, delta
        (time, outcome) tensors.
    """
    ipd = inputs.ipd
    n_time, n_out = len(inputs.coords["time"]), len(inputs.coords["outcome"])
    n_cells = n_time * n_out
    n_dev = n_cells if tau is None else 2 * n_cells  # no delta deviations without outcome pooling
    precision = pt.eye(n_dev)
    shift = pt.zeros(n_dev)
    ref = pt.broadcast_to(mu_change[:, None], (n_time, n_out))
    base = pt.stack([ref, ref + Delta_cells])  # (arm, time, outcome)
    for p in patterns:
        model_cell = ipd.time_index[p.time_of] * n_out + ipd.outcome_index[p.outcome_of]
        select = np.zeros((len(p.cells), n_cells))
        select[np.arange(len(p.cells)), model_cell] = 1.0
        b_cells = base[:, ipd.time_index[p.time_of], ipd.outcome_index[p.outcome_of]]  # (arm, cells)
        residual = p.observed - p.offset - b_cells[p.arm]  # (patients, cells)
        chol_inv = pt.linalg.solve_triangular(p.chol, pt.eye(len(p.cells)), lower=True)
        for arm in (0, 1):
            in_arm = pt.eq(p.arm, arm)  # from the data container, so swapped data stay consistent
            w = chol_inv @ deviation_design(sigma_change, tau, select, float(arm))
            precision = precision + pt.sum(in_arm) * (w.T @ w)
            shift = shift + w.T @ (chol_inv @ pt.sum(residual * in_arm[:, None], axis=0))
    x, eps, chol_p = _conditional_deviations(precision, shift, n_dev)
    pm.Potential(
        MARGINAL_IPD_POTENTIAL, -0.5 * pt.sum(x**2) + 0.5 * pt.sum(eps**2) - pt.sum(pt.log(pt.diagonal(chol_p)))
    )
    return _change_from_deviations(x, mu_change, Delta_cells, sigma_change, tau, n_time, n_out)


def _reported_sd(name: str, n, reported: np.ndarray, log_sigma: float):
    """A true SD (standardized) with a log-normal prior, and the reported SD as its estimate.

    ``log sd = log_sigma * z``, ``z ~ N(0, 1)``; :math:`s^2 \\sim Gamma((n-1)/2, (n-1)/(2 sd^2))`, i.e.
    :math:`(n-1) s^2 / sd^2 \\sim \\chi^2_{n-1}`. Creates ``z_{name}``, ``{name}`` and ``obs_{name}``
    (the observed squared SDs are the data container ``{name}_sq``).
    """
    z = pm.Normal(f"z_{name}", 0.0, 1.0, shape=len(reported))
    sd = pm.Deterministic(name, pt.exp(log_sigma * z))
    pm.Gamma(
        f"obs_{name}",
        alpha=(n - 1) / 2,
        beta=(n - 1) / (2 * sd**2),
        observed=pm.Data(f"{name}_sq", reported**2),
    )
    return sd


def _add_contrast_terms(inputs: ModelInputs, delta, R_time=None, R_out=None) -> None:
    """Reported differences ~ N(delta_natural, SE); several cells of one trial jointly, with their
    estimation errors correlated as R_time x R_outcome (the same patients give every estimate)."""
    con = inputs.contrasts
    t_idx = np.array([inputs.coords["time"].index(t) for t in con["time"]])
    o_idx = np.array([inputs.coords["outcome"].index(o) for o in con["outcome"]])
    mean = delta[t_idx, o_idx] * inputs.scale[o_idx]
    se = pm.Data("contrast_se", con["se_derived"].to_numpy(dtype=float), dims="contrast_row")
    estimate = pm.Data("contrast_estimate", con["estimate_nmr"].to_numpy(dtype=float), dims="contrast_row")
    if R_time is None:
        pm.Normal("obs_contrast", mu=mean, sigma=se, observed=estimate, dims="contrast_row")
        return
    corr = R_time[t_idx[:, None], t_idx[None, :]] * R_out[o_idx[:, None], o_idx[None, :]]
    cov = se[:, None] * corr * se[None, :]
    pm.MvNormal("obs_contrast", mu=mean, cov=cov, observed=estimate, dims="contrast_row")


def _add_threshold_terms(inputs, spec, design: pd.DataFrame, delta, change, rho, R_time, R_out) -> None:
    n_out = len(inputs.coords["outcome"])
    log_sigma = spec.scale.trial_sd_log_ratio_sigma
    if log_sigma > 0:
        z_ratio = pm.Normal("z_trial_sd_ratio", 0.0, 1.0, dims="outcome")
        sd_ratio = pm.Deterministic("trial_sd_ratio", pt.exp(log_sigma * z_ratio), dims="outcome")
    else:
        sd_ratio = pt.ones(n_out)
    # SD of change relative to the reference SD, with follow-up SD = baseline SD
    change_sd_ratio = sd_ratio * pt.sqrt(2 * (1 - rho))
    pm.Deterministic("change_sd_ratio", change_sd_ratio, dims="outcome")

    n_nodes = spec.thresholds.quadrature_nodes
    nodes = np.empty((len(design), n_nodes))
    log_w = np.empty((len(design), n_nodes))
    for i, dof in enumerate(design["df"]):
        nodes[i], log_w[i] = chi_nodes(float(dof), n_nodes)

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
    lam = effect / (change_sd_ratio[o_idx] * se_factor)
    kinds = design["kind"].to_numpy()
    # event kinds as data (spec thresholds.kinds_as_data): one compiled model serves every design
    # with the same rows, whichever statements are P<alpha or P>alpha (coverage studies)
    kind_code = (
        pm.Data("threshold_kind", np.array([EVENT_KIND_CODES[k] for k in kinds], dtype="int64"))
        if spec.thresholds.kinds_as_data
        else None
    )

    def statement_log_probs(rows):
        if kind_code is not None:
            return log_prob_event_coded(kind_code[rows], lam[rows], crit[rows], nodes[rows], log_w[rows])
        out = pt.zeros(len(rows))
        for kind in EVENT_KIND_CODES:
            sub = np.flatnonzero(kinds[rows] == kind)
            if len(sub):
                r = rows[sub]
                out = pt.set_subtensor(out[sub], log_prob_event(kind, lam[r], crit[r], nodes[r], log_w[r]))
        return out

    # per-statement log P(event) of every statement: the pointwise log-likelihood and the posterior
    # predictive replicate (a Deterministic, so nutpie evaluates it once per draw, not per gradient)
    pm.Deterministic("threshold_log_prob", statement_log_probs(np.arange(len(design))), dims="threshold_row")
    between_rows = np.flatnonzero(between)
    within_rows = np.flatnonzero(~between)
    if len(within_rows):
        # the likelihood of within-arm statements: only their rows enter the gradient
        pm.Potential("threshold_within_likelihood", statement_log_probs(within_rows).sum())
    if len(between_rows):
        _add_joint_between_term(
            design.iloc[between_rows],
            lam[between_rows],
            crit[between_rows],
            R_time,
            R_out,
            None if kind_code is None else kind_code[between_rows],
        )


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
        chi2 = pm.ChiSquared("threshold_chi2", nu=dfs[finite], shape=int(finite.sum()))
        scale = pt.set_subtensor(scale[np.flatnonzero(finite)], pt.sqrt(chi2 / dfs[finite]))
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
    corr = R_time[t_idx[:, None], t_idx[None, :]] * R_out[o_idx[:, None], o_idx[None, :]]
    mvn = pm.logp(pm.MvNormal.dist(mu=lam, cov=corr), u)
    pm.Potential("threshold_between_likelihood", mvn + log_jac.sum())


def data_values(model: pm.Model) -> dict[str, np.ndarray]:
    """Current values of the model's ``pm.Data`` containers, by name.

    Two models built from studies with the same design (same cells and evidence levels) have the
    same data names and shapes, so one compiled sampler can be reused by swapping these values
    (``nutpie``'s ``compiled.with_data(**values)``) instead of recompiling.
    """
    return {var.name: np.asarray(var.get_value()) for var in model.data_vars}
