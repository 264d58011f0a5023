r"""The hierarchical change model: inputs, likelihood terms and the PyMC builder (sources: docs/methods.md).

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

With ``[hierarchy] reference_change = "unpooled"``, and in a study with arm summaries or patient data under
the default ``"unpooled_with_arm_data"``, :math:`\sigma_\theta` is fixed at :math:`s_\mu`: each cell's
reference change is its own draw, with no SD learnt from how alike the outcomes' changes are. Pooling it
moves delta (new minus reference) by as much as it shrinks the reference arm: up to 0.48 SE from the MMRM
on 400 simulated patients, up to 0.5 posterior SD from the difference of mean changes on simulated arm
summaries (VALIDATION.md section 8).
With a single outcome the outcome deviations are not identified and are dropped
(:math:`\delta_{t} = \Delta_t`, :math:`\theta_{ref,t} = \mu_t`). When a study's only evidence is arm
summaries, or only patient data, the deviations :math:`z` are integrated out analytically and drawn
from their exact conditional normal (``change_parameterisation = "marginalised"``:
:func:`add_marginal_arm_summary_terms`, :func:`marginal_ipd_change`); the sampler then sees no
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
  :math:`\log r_o \sim N(0, s_r^2)`, and follow-up and baseline SDs are taken as equal.
  Unknown per-arm n with a known total: equal split. The statements share patients, so by default
  (``thresholds.statement_dependence = "joint"``) all of a study's statements are one event
  (:mod:`~bayes_stenosis.model.terms.threshold_joint`): each arm's standardized mean-change errors
  :math:`z_a \sim MVN(0, R_{time} \otimes R_{outcome})` over the cells and its SD ratios
  :math:`S_{a,k} = \sqrt{\chi^2_{n_a - 1}/(n_a - 1)}`; within arm :math:`a`,
  :math:`T = (\lambda_{a,k} + z_{a,k}) / S_{a,k}`; between arms,
  :math:`T = (w_{new}(\lambda_{new,k} + z_{new,k}) - w_{ref}(\lambda_{ref,k} + z_{ref,k})) / S_{b,k}`
  with :math:`w_a = n_a^{-1/2}/\sqrt{1/n_1 + 1/n_2}` and :math:`S_b` the pooled SD ratio: each
  statistic is the noncentral t above, and the event is sampled by data augmentation (GHK, cell by
  cell). With ``"independent"``, a study with one statement, between-arm statements only, or a
  between-arm test on follow-up or ANCOVA scores, each within-arm statement adds its own
  :math:`\log P(event)` (a censored likelihood), :math:`\log E_S[\Phi(\cdot)]` over
  :math:`S = \sqrt{\chi^2_{df}/df}` by Gauss-Hermite quadrature in the normal quantile of :math:`S`
  and log-space differences of normal CDFs (no underflow), and the between-arm statements are one
  event: :math:`Z + \lambda` in a box, :math:`Z \sim MVN(0, R)`, by data augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from bayes_stenosis.model.correlation import error_correlations
from bayes_stenosis.model.inputs import ModelInputs
from bayes_stenosis.model.marginal import (
    MARGINAL_IPD_POTENTIAL,
    add_marginal_arm_summary_terms,
    marginal_ipd_change,
)
from bayes_stenosis.model.terms.arm_summary import add_arm_summary_terms
from bayes_stenosis.model.terms.contrast import add_contrast_terms
from bayes_stenosis.model.terms.ipd import (
    IPD_BASELINE_POTENTIAL,
    add_ipd_followups,
    add_ipd_terms,
    ipd_followup_patterns,
)
from bayes_stenosis.model.terms.threshold import (
    add_threshold_terms,
    threshold_design,
)
from bayes_stenosis.spec import ModelSpec, ResolvedPrior


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

    ``"arm_summary"`` (:func:`add_marginal_arm_summary_terms`) or ``"ipd"``
    (:func:`marginal_ipd_change`) when ``change_parameterisation = "marginalised"``, there are two or
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
    if ipd is not None and not inputs.arm_blocks:
        return "ipd"
    return None


def build_model(
    inputs: ModelInputs,
    spec: ModelSpec,
    prior: ResolvedPrior,
    *,
    prior_sampling: bool = False,
    patient_level: bool = False,
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
        instead (:func:`prior_sampling_model`). Implies ``patient_level``.
    patient_level
        With patient data: one observed node per patient row instead of the sufficient statistics
        (the same density, ``model.terms.ipd``), the form for predictive replicates and the pointwise
        log-likelihood (:func:`predictive_model`); the sampled form is the default.

    Returns
    -------
    pm.Model
        With coords ``arm``, ``time``, ``outcome`` (and ``threshold_row``, ``contrast_row`` when those
        terms exist). ``delta`` (standardized) and ``delta_natural`` are dims (time, outcome).
    """
    design = threshold_design(inputs, spec)
    # "marginalised": where every term that involves the outcome deviations is Gaussian, they are
    # integrated out analytically: arm summaries only (add_marginal_arm_summary_terms) or patient
    # data only (marginal_ipd_change, unless prior_sampling); with contrasts, thresholds or a
    # mix of levels the non-centred form is used.
    against = marginalises_change(inputs, spec, design)
    marginalised = against == "arm_summary"
    marginalised_ipd = against == "ipd" and not prior_sampling
    patient_level = patient_level or prior_sampling
    delta = change = None  # until the deviations' terms are added, where they are integrated out
    with pm.Model(coords=_model_coords(inputs, design)) as model:
        # the standardising SDs are data: simulated replicates of one design differ in them (a pooled
        # baseline SD from the data), and a compile reused across replicates must not keep the first's
        scale = pm.Data("outcome_scale", np.asarray(inputs.scale, dtype=float), dims="outcome")
        latent = _add_latent_change(inputs, spec, prior, integrated_out=marginalised or marginalised_ipd)
        if not (marginalised or marginalised_ipd):
            delta, change = _add_latent_outputs(latent.theta_ref, latent.delta, scale)
        rho = _add_baseline_followup_correlation(inputs, spec, design)
        R_time = R_out = None
        if inputs.arm_blocks or len(design) or len(inputs.contrasts) > 1:
            R_time, R_out = error_correlations(inputs, spec, design)
        if marginalised:
            deviations = (latent.mu_change, latent.Delta_cells, latent.sigma_change, latent.tau)
            integrated = add_marginal_arm_summary_terms(inputs, spec, *deviations, rho, R_time, R_out)
            delta, change = _add_latent_outputs(*integrated, scale)
        elif inputs.arm_blocks:
            add_arm_summary_terms(model, inputs, spec, change, rho, R_time, R_out)
        if len(inputs.contrasts):
            add_contrast_terms(inputs, delta, scale, R_time if len(inputs.contrasts) > 1 else None, R_out)
        if len(design):
            add_threshold_terms(inputs, spec, design, delta, change, rho, R_time, R_out)
        if marginalised_ipd:
            _add_marginal_patient_terms(inputs, spec, latent, scale, patient_level)
        elif inputs.ipd is not None:
            add_ipd_terms(
                inputs.ipd,
                spec.ipd,
                change,
                eta=spec.correlation.outcome_lkj_eta,
                sd_log_sigma=spec.scale.sd_log_sigma,
                patient_level=patient_level,
            )
    return model


def _model_coords(inputs: ModelInputs, design: pd.DataFrame) -> dict[str, list]:
    """The model's coords: arm, time, outcome, and the rows of the threshold and contrast terms."""
    coords = {k: list(v) for k, v in inputs.coords.items()}
    if len(design):
        coords["threshold_row"] = [int(r) for r in design["row"]]
        between_rows = [int(r) for r in design.loc[design["comparison"] == "between", "row"]]
        if between_rows:  # the correlation of the between-arm statistics (a matrix over these rows)
            coords["threshold_between_row"] = between_rows
            coords["threshold_between_row_other"] = between_rows
    if len(inputs.contrasts):
        coords["contrast_row"] = [int(r) for r in inputs.contrasts["row"]]
    return coords


@dataclass(frozen=True)
class _LatentChange:
    """The hierarchy of the change as built: ``theta_ref`` and ``delta`` are (time, outcome) tensors, or
    None where the outcome deviations are integrated out (the likelihood's terms then give them);
    ``sigma_change`` and ``tau`` are None with one outcome, ``tau`` also without outcome pooling."""

    mu_change: object
    Delta_cells: object
    sigma_change: object
    tau: object
    theta_ref: object
    delta: object


def _add_latent_change(
    inputs: ModelInputs, spec: ModelSpec, prior: ResolvedPrior, *, integrated_out: bool
) -> _LatentChange:
    """The latent change in the reference arm and the treatment difference (see the module docstring).

    Created in this order: ``mu_change``, ``Delta``, then with two or more outcomes ``sigma_change``, the
    reference arm's deviations (``theta_ref`` centred, ``z_theta`` non-centred), ``tau`` and ``z_delta``;
    no deviations where they are ``integrated_out``.
    """
    h = spec.hierarchy
    n_out = len(inputs.coords["outcome"])
    mu_change = pm.Normal("mu_change", 0.0, h.mu_change_sigma, dims="time")
    # no pooling across outcomes: one prior draw per cell; partial pooling: Delta[t] + tau z[t, o]
    pooled = prior.outcome_pooling == "partial" or n_out == 1
    Delta = _prior_rv("Delta", prior, dims="time" if pooled else ("time", "outcome"))
    Delta_cells = Delta[:, None] if pooled else Delta  # broadcasts to (time, outcome)
    if n_out == 1:
        return _LatentChange(mu_change, Delta_cells, None, None, pt.shape_padright(mu_change), pt.shape_padright(Delta))
    sigma_change = _sigma_change(h, unpooled=reference_change_unpooled(inputs, spec))
    theta_ref = delta = None  # integrated out: drawn after the likelihood's terms
    if not integrated_out and h.change_parameterisation == "centred":
        theta_ref = pm.Normal("theta_ref", mu_change[:, None], sigma_change, dims=("time", "outcome"))
    elif not integrated_out:
        z_theta = pm.Normal("z_theta", 0.0, 1.0, dims=("time", "outcome"))
        theta_ref = mu_change[:, None] + sigma_change * z_theta
    tau = None
    if pooled:  # the scale is a data container: a sweep over it reuses one compile
        tau = pm.HalfNormal("tau", pm.Data("tau_scale", float(h.tau_scale)))
    if not integrated_out and pooled:
        z_delta = pm.Normal("z_delta", 0.0, 1.0, dims=("time", "outcome"))
        delta = Delta_cells + tau * z_delta
    elif not integrated_out:
        delta = Delta_cells
    return _LatentChange(mu_change, Delta_cells, sigma_change, tau, theta_ref, delta)


def reference_change_unpooled(inputs: ModelInputs, spec: ModelSpec) -> bool:
    """Whether the reference arm's change is left unpooled across outcomes (``[hierarchy]
    reference_change``, :class:`bayes_stenosis.spec.Hierarchy`): "unpooled", or
    "unpooled_with_arm_data" in a study with arm summaries or patient data."""
    choice = spec.hierarchy.reference_change
    if choice == "unpooled_with_arm_data":
        return getattr(inputs, "ipd", None) is not None or len(inputs.arm_blocks) > 0
    return choice == "unpooled"


def _sigma_change(h, unpooled: bool = False):
    """The SD of the reference arm's outcome deviations: fixed, Gamma(2, 2 / scale) or half-normal;
    ``unpooled``: fixed at ``mu_change_sigma``, so each cell's reference change is its own draw from a
    prior as wide as the mean change's (no SD learnt from the spread of the outcomes, no shrinkage beyond
    that of the mean-change prior: a factor SE^2 / (SE^2 + 1), 0.3 % at 200 patients per arm)."""
    if unpooled:
        return pt.constant(h.mu_change_sigma)
    if h.sigma_change_prior == "fixed":
        return pt.constant(h.sigma_change_scale)
    if h.sigma_change_prior == "gamma2":
        return pm.Gamma("sigma_change", alpha=2.0, beta=2.0 / h.sigma_change_scale)
    return pm.HalfNormal("sigma_change", h.sigma_change_scale)


def _add_latent_outputs(theta_ref, delta, scale):
    """``delta`` (time, outcome), ``change`` (arm, time, outcome) and their natural-unit forms, as
    Deterministics; returns delta and change."""
    delta = pm.Deterministic("delta", delta, dims=("time", "outcome"))
    change = pm.Deterministic("change", pt.stack([theta_ref, theta_ref + delta]), dims=("arm", "time", "outcome"))
    pm.Deterministic("delta_natural", delta * scale[None, :], dims=("time", "outcome"))
    pm.Deterministic("change_natural", change * scale[None, None, :], dims=("arm", "time", "outcome"))
    return delta, change


def _add_baseline_followup_correlation(inputs: ModelInputs, spec: ModelSpec, design: pd.DataFrame):
    """The baseline-follow-up correlation per outcome, where a term needs it (threshold statements, or
    arm summaries reported as scores): the spec's fixed value as data, else a Beta per instrument."""
    needs_rho = len(design) > 0 or any(np.isnan(b.sd_change).any() for b in inputs.arm_blocks)
    if not needs_rho:
        return None
    fixed = spec.correlation.fixed_baseline_followup
    if fixed is not None:
        # a data container, so a sweep over fixed values reuses one compiled model
        return pm.Data("rho_fixed", np.full(len(inputs.coords["outcome"]), float(fixed)), dims="outcome")
    priors = [spec.correlation.baseline_followup(i) for i in inputs.instruments]
    return pm.Beta(
        "rho",
        alpha=np.array([p.alpha for p in priors]),
        beta=np.array([p.beta for p in priors]),
        dims="outcome",
    )


def _add_marginal_patient_terms(
    inputs: ModelInputs, spec: ModelSpec, latent: _LatentChange, scale, patient_level: bool
) -> None:
    """The patient data with the outcome deviations integrated out (:func:`marginal_ipd_change`), the
    latent outputs drawn from them, then the patients' follow-up likelihood given them."""
    eta, sd_log_sigma = spec.correlation.outcome_lkj_eta, spec.scale.sd_log_sigma
    patterns = ipd_followup_patterns(inputs.ipd, spec.ipd, eta, sd_log_sigma, patient_level)
    deviations = (latent.mu_change, latent.Delta_cells, latent.sigma_change, latent.tau)
    _, change = _add_latent_outputs(*marginal_ipd_change(inputs, patterns, *deviations), scale)
    add_ipd_followups(inputs.ipd, patterns, change)


def check_forward_sampling(model: pm.Model) -> None:
    """Refuse forward (prior) sampling of a model that draws the deviations given the data, or whose
    patient data enter as sufficient statistics (no replicates of them)."""
    if MARGINAL_IPD_POTENTIAL in model.named_vars:
        raise ValueError(
            "this model integrates the outcome deviations out against patient data; draw prior samples "
            "from prior_sampling_model(...) (build_model(..., prior_sampling=True)) instead"
        )
    if IPD_BASELINE_POTENTIAL in model.named_vars:
        raise ValueError(
            "this model's patient data enter as sufficient statistics; draw prior samples from "
            "prior_sampling_model(...) (build_model(..., prior_sampling=True)) instead"
        )


def prior_sampling_model(inputs: ModelInputs, spec: ModelSpec, prior: ResolvedPrior, model: pm.Model | None = None):
    """The model to draw prior and prior predictive samples from: ``model`` itself (built if None)
    unless the study has patient data (see :func:`build_model`)."""
    if getattr(inputs, "ipd", None) is not None:
        return build_model(inputs, spec, prior, prior_sampling=True)
    return model if model is not None else build_model(inputs, spec, prior)


def predictive_model(inputs: ModelInputs, spec: ModelSpec, prior: ResolvedPrior, model: pm.Model | None = None):
    """The model to draw posterior predictive replicates and pointwise log-likelihoods from, at the
    posterior draws of ``model``: with patient data its ``patient_level`` form (same free variables,
    one observed node per patient row), otherwise ``model`` itself (built if None)."""
    if getattr(inputs, "ipd", None) is not None:
        return build_model(inputs, spec, prior, patient_level=True)
    return model if model is not None else build_model(inputs, spec, prior)


def data_values(model: pm.Model) -> dict[str, np.ndarray]:
    """Current values of the model's ``pm.Data`` containers, by name.

    Two models built from studies with the same design (same cells and evidence levels) have the
    same data names and shapes, so one compiled sampler can be reused by swapping these values
    (``nutpie``'s ``compiled.with_data(**values)``) instead of recompiling.
    """
    return {var.name: np.asarray(var.get_value()) for var in model.data_vars}
