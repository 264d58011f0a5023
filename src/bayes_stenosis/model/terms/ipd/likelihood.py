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
follow-ups). Patients are grouped by their missingness pattern :math:`p` (observed cells :math:`S`,
:math:`d = |S|`, one Cholesky factor :math:`L_p` of :math:`V_{SS}` per pattern).

Sufficient statistics (the sampled form). Within one pattern and arm :math:`a` the residual
:math:`r_i = x_{i,S} - m_{i,S}` is linear in the patient's data :math:`u_i = (x_{i,S}, x^b_{i\cdot}, 1)`:
:math:`r_i = A_a u_i`, :math:`A_a = [\,I_d \mid -G \mid -(g + c_{a,S})\,]` with
:math:`G_{k o} = \beta_k [o_k = o]` and :math:`g_k = (1 - \beta_k)\mu^b_{o_k}`. So with the data constant
:math:`M_{p,a} = \sum_i u_i u_i^T` (:meth:`IPDInputs.pattern_stats`; :math:`n_{p,a} = (M_{p,a})_{qq}`)

.. math::

    \sum_{i \in (p, a)} \log MVN(x_{i,S}; m_{i,S}, V_{SS})
    = -\tfrac12 \operatorname{tr}\!\big(W M_{p,a} W^T\big) - n_{p,a} \textstyle\sum_k \log (L_p)_{kk}
      - \tfrac{n_{p,a} d}{2} \log 2\pi, \qquad W = L_p^{-1} A_a ,

exactly, and likewise the baseline term with :math:`v_i = (x^b_{i\cdot}, 1)`, :math:`A = [I_O \mid -\mu^b]`
and :math:`M = \sum_i v_i v_i^T` over every patient (:meth:`IPDInputs.baseline_stats`). These are the
sampled density (``pm.Potential`` ``ipd_baseline_loglik``, ``ipd_followup_loglik_<pattern>``): one
evaluation costs :math:`O(d^3 + q^2 d)` per pattern and arm (:math:`q = d + O + 1`), whatever the number
of patients, and the data containers' shapes depend on the patterns only, so trials with the same
patterns share one compile. ``patient_level=True`` builds the same density with one observed node per
patient row (``obs_ipd_baseline``, ``obs_ipd_followup_<pattern>``, a ``CustomDist`` MVN per row): the
form for forward (prior predictive) draws, posterior predictive replicates and the pointwise
log-likelihood, evaluated at the posterior draws of the sampled form (same free variables), never sampled.

When patient data are a study's only evidence, the outcome deviations of the change are integrated
out as well (``bayes_stenosis.model.marginal.marginal_ipd_change``, from the per-pattern statistics of
:func:`ipd_followup_patterns`); :func:`add_ipd_followups` then adds the follow-up likelihood given the
drawn change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_stenosis.model.terms.ipd.data import BASELINE_STATS, PATTERN_STATS, IPDInputs
from bayes_stenosis.spec import IPD as IPDSettings

__all__ = [
    "IPD_BASELINE_POTENTIAL",
    "FollowupPattern",
    "add_ipd_followups",
    "add_ipd_terms",
    "followup_covariance",
    "ipd_followup_patterns",
    "mvnormal_random",
    "mvnormal_stats_logp",
]


#: The sampled (sufficient-statistics) form's baseline term; present exactly when that form is built.
IPD_BASELINE_POTENTIAL = "ipd_baseline_loglik"


@dataclass
class FollowupPattern:
    r"""The follow-up term of one missingness pattern, short of the latent change.

    ``stats`` (pm.Data, (arm, q, q)) holds :math:`M_{p,a}` (:meth:`IPDInputs.pattern_stats`),
    ``cells`` the indices k = t*O + o into the IPD's own (time, outcome) grid, ``chol`` the Cholesky
    factor of :math:`V_{SS}`; :meth:`residual_map` gives :math:`A` of the module docstring. With
    ``patient_level`` the per-patient rows as well: ``observed`` (patients x cells), ``arm`` (patients,)
    and ``offset`` :math:`\mu^b_o + \beta_{t,o}(x^b_{io} - \mu^b_o)` (patients x cells).
    """

    name: str
    rows: np.ndarray  # into IPDInputs.patients
    cells: np.ndarray  # k = t * O + o over the IPD's times x outcomes
    time_of: np.ndarray  # per cell, index into IPDInputs.times
    outcome_of: np.ndarray  # per cell, index into IPDInputs.outcomes
    n_outcomes: int  # O, the IPD's outcomes
    stats: object  # pm.Data (arm, q, q)
    mu_b: object  # tensor (O,)
    beta: object  # tensor (cells,)
    chol: object  # tensor (cells, cells)
    arm: object = None  # pm.Data (patients,) 0 = reference, 1 = new (patient_level only)
    observed: object = None  # pm.Data (patients, cells) (patient_level only)
    offset: object = None  # tensor (patients, cells) (patient_level only)

    def residual_map(self, mean):
        """A (cells, q) with r_i = A u_i = x_{i,S} - offset_i - mean, for ``mean`` (cells,), e.g. one arm's change."""
        pick = np.zeros((len(self.cells), self.n_outcomes))
        pick[np.arange(len(self.cells)), self.outcome_of] = 1.0
        shift = (1.0 - self.beta) * self.mu_b[self.outcome_of] + mean
        return pt.concatenate([pt.eye(len(self.cells)), -self.beta[:, None] * pick, -shift[:, None]], axis=1)


def add_ipd_terms(
    ipd: IPDInputs,
    settings: IPDSettings,
    change,
    eta: float,
    sd_log_sigma: float,
    patient_level: bool = False,
) -> None:
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
    patient_level
        One observed node per patient row instead of the sufficient statistics (same density).
    """
    add_ipd_followups(ipd, ipd_followup_patterns(ipd, settings, eta, sd_log_sigma, patient_level), change)


def _ipd_change(ipd: IPDInputs, change):
    """The model's change (arm, time, outcome) on the IPD's own times x outcomes."""
    return change[:, ipd.time_index][:, :, ipd.outcome_index]


def _add_baseline_and_slope(ipd: IPDInputs, settings: IPDSettings, eta: float, sd_log_sigma: float, patient_level):
    """IPD coords, the baseline term and the slopes: (baseline mean, slope (T, O))."""
    model = pm.modelcontext(None)
    _, n_t, n_o = ipd.followup.shape
    model.add_coord("ipd_outcome", ipd.outcomes)
    model.add_coord("ipd_outcome_other", ipd.outcomes)
    model.add_coord("ipd_time", ipd.times)

    mu_b = pm.Normal("ipd_baseline_mean", 0.0, settings.baseline_mean_sigma, dims="ipd_outcome")
    chol_b = _chol_cov("ipd_baseline", n_o, eta, "lognormal", sd_log_sigma)
    if patient_level:
        model.add_coord("ipd_patient", [str(p) for p in ipd.patients])
        baseline = pm.Data("ipd_baseline", ipd.baseline, dims=("ipd_patient", "ipd_outcome"))
        _mvnormal_rows("obs_ipd_baseline", mu_b, chol_b, baseline, dims=("ipd_patient", "ipd_outcome"))
    else:
        stats = pm.Data(BASELINE_STATS, ipd.baseline_stats())
        residual_map = pt.concatenate([pt.eye(n_o), -mu_b[:, None]], axis=1)
        pm.Potential(IPD_BASELINE_POTENTIAL, mvnormal_stats_logp(stats, residual_map, chol_b, n_o))

    if settings.baseline_adjustment == "ancova":
        beta = pm.Normal("ipd_slope", settings.slope_mu, settings.slope_sigma, dims=("ipd_time", "ipd_outcome"))
    else:
        beta = pt.ones((n_t, n_o))
    return mu_b, beta


def ipd_followup_patterns(
    ipd: IPDInputs, settings: IPDSettings, eta: float, sd_log_sigma: float, patient_level: bool = False
) -> list[FollowupPattern]:
    """Add everything of the IPD term but the follow-up likelihood; one :class:`FollowupPattern` each.

    Parameters as in :func:`add_ipd_terms`. :func:`add_ipd_followups` adds the observed follow-ups
    given the change.
    """
    _, n_t, n_o = ipd.followup.shape
    mu_b, beta = _add_baseline_and_slope(ipd, settings, eta, sd_log_sigma, patient_level)
    cov_full = followup_covariance(ipd, settings, eta)
    patterns = ipd.patterns()
    observed = ipd.observed_arrays(patterns) if patient_level else {}
    out = []
    for name, rows, cells in patterns:
        t_of, o_of = cells // n_o, cells % n_o
        cov = cov_full[cells[:, None], cells[None, :]]
        stats = pm.Data(f"{PATTERN_STATS}{name}", ipd.pattern_stats(rows, cells))
        pattern = FollowupPattern(
            name, rows, cells, t_of, o_of, n_o, stats, mu_b, beta[t_of, o_of], pt.linalg.cholesky(cov)
        )
        if patient_level:
            _add_patient_rows(pattern, ipd, observed[f"obs_ipd_followup_{name}"])
        out.append(pattern)
    return out


def _add_patient_rows(p: FollowupPattern, ipd: IPDInputs, observed: np.ndarray) -> None:
    """The pattern's per-patient data containers, coords and offsets (``patient_level``)."""
    model = pm.modelcontext(None)
    model.add_coord(f"ipd_patient_{p.name}", [str(i) for i in ipd.patients[p.rows]])
    labels = [f"{ipd.times[t]:g}|{ipd.outcomes[o]}" for t, o in zip(p.time_of, p.outcome_of, strict=True)]
    model.add_coord(f"ipd_cell_{p.name}", labels)
    p.observed = pm.Data(f"ipd_followup_{p.name}", observed, dims=(f"ipd_patient_{p.name}", f"ipd_cell_{p.name}"))
    xb = pm.Data(f"ipd_baseline_{p.name}", ipd.baseline[p.rows][:, p.outcome_of])
    p.arm = pm.Data(f"ipd_arm_{p.name}", ipd.arm_index[p.rows])
    mu = p.mu_b[p.outcome_of]
    p.offset = mu + p.beta * (xb - mu)


def add_ipd_followups(ipd: IPDInputs, patterns: list[FollowupPattern], change) -> None:
    """The follow-ups of each pattern given the model's change (arm, time, outcome): per arm from the
    sufficient statistics, or one observed row per patient where the pattern has them."""
    ch = _ipd_change(ipd, change)
    for p in patterns:
        if p.observed is not None:
            mean = p.offset + ch[p.arm][:, p.time_of, p.outcome_of]
            dims = (f"ipd_patient_{p.name}", f"ipd_cell_{p.name}")
            _mvnormal_rows(f"obs_ipd_followup_{p.name}", mean, p.chol, p.observed, dims=dims)
            continue
        d = len(p.cells)
        loglik = sum(
            mvnormal_stats_logp(p.stats[a], p.residual_map(ch[a][p.time_of, p.outcome_of]), p.chol, d) for a in (0, 1)
        )
        pm.Potential(f"ipd_followup_loglik_{p.name}", loglik)


def mvnormal_stats_logp(stats, residual_map, chol, d: int):
    r""":math:`\sum_i \log MVN(r_i; 0, L L^T)` of residuals :math:`r_i = A u_i` from :math:`M = \sum_i u_i u_i^T`.

    :math:`-\tfrac12 \operatorname{tr}(W M W^T) - n \sum_k \log L_{kk} - \tfrac{n d}{2}\log 2\pi`,
    :math:`W = L^{-1}A`, :math:`n = M_{qq}` (the last entry of u is 1); ``d`` the dimension of r.
    """
    w = pt.linalg.solve_triangular(chol, residual_map, lower=True)
    n = stats[-1, -1]
    log_det = pt.sum(pt.log(pt.diagonal(chol)))
    return -0.5 * pt.sum(w * (w @ stats)) - n * log_det - 0.5 * n * d * np.log(2 * np.pi)


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
