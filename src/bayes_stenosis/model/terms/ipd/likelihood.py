r"""The ``ipd`` likelihood term: patient-level scores feeding the latent change structure of :mod:`model`.

Notation as in :mod:`bayes_stenosis.model`: arms :math:`a`, follow-up times :math:`t`, outcomes :math:`o`,
standardized units (natural units divided by the outcome's scale :math:`s_o`, the pooled baseline SD of
the patients in ``ipd.csv``). Patient :math:`i` is in arm :math:`a_i`; its scores are centred on the pooled
observed baseline mean :math:`m_o` (a data constant) before dividing by :math:`s_o`, so
:math:`x^b_{io} = (y^b_{io} - m_o)/s_o` and :math:`x_{ito} = (y_{ito} - m_o)/s_o`.

Baseline (randomisation: one mean in both arms):

.. math::

    x^b_{i\cdot} \sim MVN(\mu^b, \Sigma_b), \qquad
    \mu^b_o \sim N(0, s_{\mu b}^2),\ \Sigma_b = diag(\sigma^b) \Omega_b\, diag(\sigma^b),\
    \log\sigma^b_o \sim N(0, s_{\log\sigma}^2),\ \Omega_b \sim LKJ(\eta)

Follow-up, baseline-adjusted (ANCOVA form) with the latent change :math:`c_{a,t,o}` (``change`` of the
model, whose new-minus-reference difference is ``delta``):

.. math::

    x_{ito} = \mu^b_o + c_{a_i,t,o} + \beta_{t,o}\,(x^b_{io} - \mu^b_o) + e_{ito}, \qquad
    e_{i\cdot\cdot} \sim MVN(0, V)

with :math:`\beta_{t,o} \sim N(m_\beta, s_\beta^2)` and the follow-ups of patient :math:`i` stacked as
:math:`k = t\cdot O + o`. Since :math:`E[x^b_{io}] = \mu^b_o`, :math:`E[x_{ito} - x^b_{io} \mid a] =
c_{a,t,o}`: ``change`` is the mean change from baseline and ``delta`` the treatment difference in mean
change, exactly as in the summary terms (under randomisation the difference of adjusted means estimates the
same quantity; the adjustment only removes baseline noise, a variance factor :math:`1-\rho^2` instead of
:math:`2(1-\rho)` for a change-score analysis with equal SDs). ``baseline_adjustment = "change"`` fixes
:math:`\beta = 1`: the change-score analysis of the same patients. This is the MMRM of repeated-measures
trials, one ANCOVA per cell on the cell's own baseline, fitted jointly.

The covariance :math:`V` (:func:`followup_covariance`): ``covariance = "unstructured"`` (the default)
:math:`V = diag(\sigma)\,\Omega\,diag(\sigma)`, half-normal SDs and LKJ(:math:`\eta_V`) correlations
over all :math:`T\cdot O` cells (``residual_correlation = "none"``: one such matrix over the visits of
each outcome, zero across outcomes); ``covariance = "patient_effects"``
:math:`V = J_T \otimes \Sigma_u + I_T \otimes \Sigma_e` (a patient effect :math:`u_{i\cdot} \sim
MVN(0, \Sigma_u)` shared by every visit plus per-visit residuals; :math:`\Sigma_u` dropped with one
follow-up time, where it is not identified).

A patient observed on the subset :math:`S_i` of cells contributes :math:`MVN(x_{i,S_i}; m_{i,S_i},
V_{S_i S_i})`, the exact marginal of the observed values. Missing follow-ups are dropped from the
likelihood; the result is valid when they are missing at random given the baseline (and the observed
follow-ups). Patients are grouped by their missingness pattern (one Cholesky factor per pattern, all
patients of a pattern in one vectorised MVN), so the cost is linear in N with no per-patient
parameters.

When patient data are a study's only evidence, the outcome deviations of the change are integrated
out as well (``bayes_stenosis.model.marginal.marginal_ipd_change``, from the per-pattern pieces of
:func:`ipd_followup_patterns`); :func:`add_ipd_followups` then adds the follow-up likelihood given the
drawn change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_stenosis.model.terms.ipd.data import IPDInputs
from bayes_stenosis.spec import IPD as IPDSettings

__all__ = [
    "FollowupPattern",
    "add_ipd_followups",
    "add_ipd_terms",
    "followup_covariance",
    "ipd_followup_patterns",
    "mvnormal_random",
]


@dataclass
class FollowupPattern:
    r"""The follow-up term of one missingness pattern, short of the latent change.

    The pattern's patients' observed standardized follow-ups ``observed`` (patients x cells) are
    ``MVN(offset + change[arm, t, o], chol chol^T)`` row by row, with ``offset`` the baseline part
    :math:`\mu^b_o + \beta_{t,o}(x^b_{io} - \mu^b_o)` (patients x cells) and ``cells`` the
    indices k = t*O + o into the IPD's own (time, outcome) grid.
    """

    name: str
    rows: np.ndarray  # into IPDInputs.patients
    cells: np.ndarray  # k = t * O + o over the IPD's times x outcomes
    time_of: np.ndarray  # per cell, index into IPDInputs.times
    outcome_of: np.ndarray  # per cell, index into IPDInputs.outcomes
    arm: object  # pm.Data (patients,) 0 = reference, 1 = new
    observed: object  # pm.Data (patients, cells)
    offset: object  # tensor (patients, cells)
    chol: object  # tensor (cells, cells)


def add_ipd_terms(ipd: IPDInputs, settings: IPDSettings, change, eta: float, sd_log_sigma: float) -> None:
    """Add the IPD likelihood to the model in context (see the module docstring).

    Parameters
    ----------
    ipd
        From :func:`prepare_ipd_inputs`.
    settings
        Priors and options.
    change
        The model's latent change, dims (arm, time, outcome), standardized.
    eta
        LKJ shape for the outcome correlations.
    sd_log_sigma
        Log-SD of the baseline SDs' log-normal prior (the spec's ``scale.sd_log_sigma``).
    """
    add_ipd_followups(ipd, ipd_followup_patterns(ipd, settings, eta, sd_log_sigma), change)


def _ipd_change(ipd: IPDInputs, change):
    """The model's change (arm, time, outcome) on the IPD's own times x outcomes."""
    return change[:, ipd.time_index][:, :, ipd.outcome_index]


def _add_baseline_and_slope(ipd: IPDInputs, settings: IPDSettings, eta: float, sd_log_sigma: float):
    """IPD coords, the baseline term and the slopes: (baseline mean, slope (T, O), baseline data)."""
    model = pm.modelcontext(None)
    _, n_t, n_o = ipd.followup.shape
    model.add_coord("ipd_outcome", ipd.outcomes)
    model.add_coord("ipd_outcome_other", ipd.outcomes)
    model.add_coord("ipd_time", ipd.times)
    model.add_coord("ipd_patient", [str(p) for p in ipd.patients])

    mu_b = pm.Normal("ipd_baseline_mean", 0.0, settings.baseline_mean_sigma, dims="ipd_outcome")
    chol_b = _chol_cov("ipd_baseline", n_o, eta, "lognormal", sd_log_sigma)
    baseline = pm.Data("ipd_baseline", ipd.baseline, dims=("ipd_patient", "ipd_outcome"))
    _mvnormal_rows("obs_ipd_baseline", mu_b, chol_b, baseline, dims=("ipd_patient", "ipd_outcome"))

    if settings.baseline_adjustment == "ancova":
        beta = pm.Normal("ipd_slope", settings.slope_mu, settings.slope_sigma, dims=("ipd_time", "ipd_outcome"))
    else:
        beta = pt.ones((n_t, n_o))
    return mu_b, beta, baseline


def ipd_followup_patterns(
    ipd: IPDInputs, settings: IPDSettings, eta: float, sd_log_sigma: float
) -> list[FollowupPattern]:
    """Add everything of the IPD term but the follow-up likelihood; one :class:`FollowupPattern` each.

    Patient effects integrated out (``patient_effects = "marginal"``); parameters as in
    :func:`add_ipd_terms`. :func:`add_ipd_followups` adds the observed follow-ups given the change.
    """
    model = pm.modelcontext(None)
    _, n_t, n_o = ipd.followup.shape
    mu_b, beta, _ = _add_baseline_and_slope(ipd, settings, eta, sd_log_sigma)
    cov_full = followup_covariance(ipd, settings, eta)
    patterns = ipd.patterns()
    observed = ipd.observed_arrays(patterns)
    out = []
    for name, rows, cells in patterns:
        t_of, o_of = cells // n_o, cells % n_o
        model.add_coord(f"ipd_patient_{name}", [str(p) for p in ipd.patients[rows]])
        model.add_coord(
            f"ipd_cell_{name}", [f"{ipd.times[t]:g}|{ipd.outcomes[o]}" for t, o in zip(t_of, o_of, strict=True)]
        )
        obs = pm.Data(
            f"ipd_followup_{name}",
            observed[f"obs_ipd_followup_{name}"],
            dims=(f"ipd_patient_{name}", f"ipd_cell_{name}"),
        )
        xb = pm.Data(f"ipd_baseline_{name}", ipd.baseline[rows][:, o_of])
        arm = pm.Data(f"ipd_arm_{name}", ipd.arm_index[rows])
        offset = mu_b[o_of] + beta[t_of, o_of] * (xb - mu_b[o_of])
        cov = cov_full[cells[:, None], cells[None, :]]
        out.append(FollowupPattern(name, rows, cells, t_of, o_of, arm, obs, offset, pt.linalg.cholesky(cov)))
    return out


def add_ipd_followups(ipd: IPDInputs, patterns: list[FollowupPattern], change) -> None:
    """The observed follow-ups of each pattern given the model's change (arm, time, outcome)."""
    ch = _ipd_change(ipd, change)
    for p in patterns:
        mean = p.offset + ch[p.arm][:, p.time_of, p.outcome_of]
        _mvnormal_rows(
            f"obs_ipd_followup_{p.name}", mean, p.chol, p.observed, dims=(f"ipd_patient_{p.name}", f"ipd_cell_{p.name}")
        )


def _mvnormal_logp(value, mu, chol):
    r"""Row-wise MVN log density with one Cholesky factor shared by all rows.

    :math:`\log p(x_i) = -\tfrac12\|L^{-1}(x_i - \mu_i)\|^2 - \sum_k \log L_{kk} - \tfrac d2\log 2\pi`;
    :math:`L^{-1}` is formed once (one d x d triangular solve) and applied as a matrix product, so the
    cost is one small solve plus an (n x d) x (d x d) product, not one solve per patient.
    """
    d = chol.shape[-1]
    chol_inv = pt.linalg.solve_triangular(chol, pt.eye(d), lower=True)
    # (CustomDist may hand the factor over with leading broadcast dims: index the last two axes)
    z = pt.sum((value - mu)[..., None, :] * chol_inv, axis=-1)
    log_det = pt.sum(pt.log(pt.diagonal(chol_inv, axis1=-2, axis2=-1)), axis=-1)
    return -0.5 * pt.sum(z**2, axis=-1) + log_det - 0.5 * d * np.log(2 * np.pi)


def mvnormal_random(mu, chol, rng=None, size=None):
    """Draws mu + L z, z ~ N(0, I); ``size`` is the batch shape (the signature's core dim d excluded).

    The factor may arrive with leading broadcast dims, e.g. (1, d, d): only its last two axes are the matrix.
    """
    mu, chol = np.asarray(mu), np.asarray(chol)
    batch = tuple(np.atleast_1d(size)) if size is not None else np.broadcast_shapes(mu.shape[:-1], chol.shape[:-2])
    noise = rng.standard_normal((*batch, mu.shape[-1]))
    return mu + np.einsum("...ij,...j->...i", chol, noise)


def _mvnormal_rows(name: str, mu, chol, observed, dims):
    """Observed rows ~ MVN(mu_row, chol chol^T), as a CustomDist: pointwise (per-patient) log-likelihood
    and posterior predictive draws, without PyMC's per-row broadcasting of the Cholesky factor."""
    return pm.CustomDist(
        name,
        mu,
        chol,
        logp=_mvnormal_logp,
        random=mvnormal_random,
        signature="(d),(d,d)->(d)",
        observed=observed,
        dims=dims,
    )


def _chol_cov(name: str, n: int, eta: float, family: str, scale: float, correlation: str = "lkj"):
    """Cholesky factor of diag(sd) Omega diag(sd): sd half-normal(scale) or log-normal(0, scale), Omega LKJ(eta).

    Stores ``{name}_sd`` (dims ipd_outcome) and, with two or more outcomes, ``{name}_corr``.
    """
    sd_dist = pm.HalfNormal.dist(scale, shape=n) if family == "halfnormal" else pm.LogNormal.dist(0.0, scale, shape=n)
    if n == 1 or correlation == "none":
        if family == "halfnormal":
            sd = pm.HalfNormal(f"{name}_sd", scale, dims="ipd_outcome")
        else:
            sd = pm.LogNormal(f"{name}_sd", 0.0, scale, dims="ipd_outcome")
        return pt.diag(sd)
    chol, corr, sd = pm.LKJCholeskyCov(f"{name}_chol", eta=eta, n=n, sd_dist=sd_dist, compute_corr=True)
    pm.Deterministic(f"{name}_sd", sd, dims="ipd_outcome")
    pm.Deterministic(f"{name}_corr", corr, dims=("ipd_outcome", "ipd_outcome_other"))
    return chol


def followup_covariance(ipd: IPDInputs, settings: IPDSettings, eta: float):
    r"""The covariance V (K x K, cells k = t*O + o) of a patient's follow-up residuals given the baseline.

    ``covariance = "unstructured"``: :math:`V = diag(\sigma)\,\Omega\,diag(\sigma)`, :math:`\sigma_k \sim
    N^+(0, s_e^2)`, :math:`\Omega \sim LKJ(\eta_V)` (``covariance_lkj_eta``), stored as ``ipd_cov_sd``
    (dims ipd_cell) and ``ipd_cov_corr``; with ``residual_correlation = "none"`` one such matrix over the
    visits of each outcome and zero across outcomes. ``"patient_effects"``:
    :math:`V = J_T\otimes\Sigma_u + I_T\otimes\Sigma_e` (``ipd_patient_*``, ``ipd_residual_*``; no
    :math:`\Sigma_u` with one follow-up time, where it is not identified).
    """
    model = pm.modelcontext(None)
    _, n_t, n_o = ipd.followup.shape
    k = np.arange(n_t * n_o)
    t_of, o_of = k // n_o, k % n_o
    if settings.covariance == "patient_effects":
        chol_e = _chol_cov(
            "ipd_residual", n_o, eta, "halfnormal", settings.residual_sd_scale, settings.residual_correlation
        )
        cov_e = chol_e @ chol_e.T
        same_time = (t_of[:, None] == t_of[None, :]).astype(float)
        cov = same_time * cov_e[o_of[:, None], o_of[None, :]]
        if n_t > 1:
            chol_u = _chol_cov("ipd_patient", n_o, eta, "halfnormal", settings.patient_sd_scale)
            cov = cov + (chol_u @ chol_u.T)[o_of[:, None], o_of[None, :]]
        return cov
    labels = [f"{ipd.times[t]:g}|{ipd.outcomes[o]}" for t, o in zip(t_of, o_of, strict=True)]
    model.add_coord("ipd_cell", labels)
    model.add_coord("ipd_cell_other", labels)
    lkj_eta, scale = settings.covariance_lkj_eta, settings.residual_sd_scale
    if settings.residual_correlation == "lkj":
        sd, corr = _lkj_block("ipd_cov", n_t * n_o, lkj_eta, scale)
    else:  # one block over visits per outcome, nothing shared across outcomes
        blocks = [_lkj_block(f"ipd_cov_{j}", n_t, lkj_eta, scale) for j in range(n_o)]
        sd_to = pt.stack([b[0] for b in blocks])  # (outcome, time)
        corr_ott = pt.stack([b[1] for b in blocks])  # (outcome, time, time)
        sd = sd_to[o_of, t_of]
        same_outcome = (o_of[:, None] == o_of[None, :]).astype(float)
        corr = same_outcome * corr_ott[o_of[:, None], t_of[:, None], t_of[None, :]]
    sd = pm.Deterministic("ipd_cov_sd", sd, dims="ipd_cell")
    corr = pm.Deterministic("ipd_cov_corr", corr, dims=("ipd_cell", "ipd_cell_other"))
    return sd[:, None] * corr * sd[None, :]


def _lkj_block(name: str, n: int, eta: float, scale: float):
    """(SDs, correlation matrix) of an n x n covariance: half-normal(scale) SDs, LKJ(eta) correlations."""
    if n == 1:
        return pm.HalfNormal(f"{name}_sd1", scale, shape=1), pt.ones((1, 1))
    sd_dist = pm.HalfNormal.dist(scale, shape=n)
    _, corr, sd = pm.LKJCholeskyCov(f"{name}_chol", eta=eta, n=n, sd_dist=sd_dist, compute_corr=True)
    return sd, corr
