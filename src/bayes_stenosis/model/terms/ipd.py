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

    x_{ito} = \mu^b_o + c_{a_i,t,o} + \beta_{t,o}\,(x^b_{io} - \mu^b_o) + u_{io} + e_{ito}, \qquad
    u_{i\cdot} \sim MVN(0, \Sigma_u),\ e_{it\cdot} \sim MVN(0, \Sigma_e)

with :math:`\beta_{t,o} \sim N(m_\beta, s_\beta^2)`, :math:`\Sigma_u = diag(\sigma^u)\Omega_u diag(\sigma^u)`,
:math:`\Sigma_e = diag(\sigma^e)\Omega_e diag(\sigma^e)`, half-normal SDs and LKJ(:math:`\eta`)
correlations (``residual_correlation = "none"`` makes :math:`\Omega_e = I`: residual SD per outcome only).
Since :math:`E[x^b_{io}] = \mu^b_o`, :math:`E[x_{ito} - x^b_{io} \mid a] = c_{a,t,o}`: ``change`` is the
mean change from baseline and ``delta`` the treatment difference in mean change, exactly as in the
summary terms (under randomisation the difference of adjusted means estimates the same quantity; the
adjustment only removes baseline noise, a variance factor :math:`1-\rho^2` instead of :math:`2(1-\rho)`
for a change-score analysis with equal SDs). ``baseline_adjustment = "change"`` fixes :math:`\beta = 1`:
the change-score analysis of the same patients.

Patient effects are integrated out analytically (``patient_effects = "marginal"``, the default): with
the follow-ups of patient :math:`i` stacked as :math:`k = t\cdot O + o`,

.. math::

    x_{i\cdot\cdot} \mid x^b_{i\cdot} \sim MVN(m_i, V), \qquad
    V = J_T \otimes \Sigma_u + I_T \otimes \Sigma_e,

and a patient observed on the subset :math:`S_i` of cells contributes :math:`MVN(x_{i,S_i}; m_{i,S_i},
V_{S_i S_i})`, the exact marginal of the observed values. Missing follow-ups are dropped from the
likelihood; the result is valid when they are missing at random given the baseline (and the observed
follow-ups). Patients are grouped by their missingness pattern (one Cholesky factor per pattern, all
patients of a pattern in one vectorised MVN), so the cost is linear in N with no per-patient
parameters. With a single follow-up time :math:`\Sigma_u` and :math:`\Sigma_e` are not separately
identified; :math:`u` is then dropped (:math:`V = \Sigma_e`). ``patient_effects = "latent"`` samples
the :math:`N\times O` patient effects (non-centred) instead, with independent residuals; it exists for
the measurements in ``benchmarks/bench_ipd.py``.

When patient data are a study's only evidence, the outcome deviations of the change are integrated
out as well (``bayes_stenosis.model.marginal.marginal_ipd_change``, from the per-pattern pieces of
:func:`ipd_followup_patterns`); :func:`add_ipd_followups` then adds the follow-up likelihood given the
drawn change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayes_stenosis.errors import InputError
from bayes_stenosis.spec import IPD as IPDSettings

__all__ = [
    "FollowupPattern",
    "IPDInputs",
    "IPDSettings",
    "add_ipd_followups",
    "add_ipd_terms",
    "ipd_followup_patterns",
    "ipd_scale",
    "missing_text",
    "prepare_ipd_inputs",
    "ipd_observed_summary",
    "ipd_predictive_summary",
]


@dataclass
class IPDInputs:
    """Patient-level data as the model uses them (standardized, centred), plus what was missing."""

    outcome_index: np.ndarray  # (O,) into the model's outcome coord
    time_index: np.ndarray  # (T,) into the model's time coord
    outcomes: list[str]
    times: list[float]
    patients: np.ndarray  # (N,) ids
    arm_index: np.ndarray  # (N,) 0 = reference, 1 = new
    baseline: np.ndarray  # (N, O) standardized
    followup: np.ndarray  # (N, T, O) standardized, NaN = missing
    centre: np.ndarray  # (O,) natural units
    scale: np.ndarray  # (O,) natural units per standardized unit
    missing: pd.DataFrame = field(default_factory=pd.DataFrame)  # arm, time, outcome, patients, missing

    @property
    def observed(self) -> np.ndarray:
        return ~np.isnan(self.followup)

    def observed_arrays(self, patterns=None) -> dict[str, np.ndarray]:
        """Observed (standardized) values per likelihood variable: ``obs_ipd_baseline`` (N, O) and
        ``obs_ipd_followup_{pattern}`` (the pattern's patients x its observed cells k = t*O + o)."""
        n, n_t, n_o = self.followup.shape
        flat = self.followup.reshape(n, n_t * n_o)
        out = {"obs_ipd_baseline": self.baseline}
        for name, rows, cells in patterns if patterns is not None else self.patterns():
            out[f"obs_ipd_followup_{name}"] = flat[np.ix_(rows, cells)]
        return out

    def patterns(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(name, patient rows, observed cell indices k = t*O + o) per missingness pattern with data."""
        n, n_t, n_o = self.followup.shape
        mask = self.observed.reshape(n, n_t * n_o)
        weights = 1 << np.arange(n_t * n_o, dtype=np.int64)
        codes = mask.astype(np.int64) @ weights
        out = []
        for code in np.unique(codes):
            cells = np.flatnonzero(mask[np.flatnonzero(codes == code)[0]])
            if len(cells):
                out.append((f"m{int(code)}", np.flatnonzero(codes == code), cells))
        return out


def ipd_scale(study) -> dict[str, tuple[float, float]]:
    """Per IPD outcome: (pooled baseline SD, pooled baseline mean) over both arms, natural units.

    The pooled SD is :math:`\\sqrt{\\sum_a (n_a - 1) s_a^2 / \\sum_a (n_a - 1)}` of the baseline scores.
    """
    df = study.evidence["ipd"]
    base = df[(df.time == study.meta.times.baseline) & df.value.notna()]
    out = {}
    for o, sub in base.groupby("outcome", sort=False):
        groups = [g.value.to_numpy(dtype=float) for _, g in sub.groupby("arm")]
        dof = sum(len(g) - 1 for g in groups)
        if dof < 1:
            raise InputError(
                study.folder / "ipd.csv",
                f"outcome {o}: at least 3 patients with a baseline value are needed to scale the model",
                field="value",
            )
        pooled = math.sqrt(sum(float(np.sum((g - g.mean()) ** 2)) for g in groups) / dof)
        if not pooled > 0:
            raise InputError(study.folder / "ipd.csv", f"outcome {o}: every baseline value is the same", field="value")
        out[str(o)] = (pooled, float(sub.value.mean()))
    return out


def prepare_ipd_inputs(study, outcomes: list[str], times: list[float], arms: list[str]) -> IPDInputs | None:
    """The patient-level arrays of a validated study, or None without ``ipd.csv`` rows.

    Patients are ordered reference arm first, then by first appearance. A follow-up row that is absent
    counts as missing, like an empty value. Standardization uses :func:`ipd_scale`.
    """
    df = study.evidence["ipd"]
    if not len(df):
        return None
    baseline_time = study.meta.times.baseline
    ipd_outcomes = [o for o in outcomes if o in set(df.outcome)]
    follow = df[df.time != baseline_time]
    ipd_times = [t for t in times if t in set(follow.time)]
    scale_centre = ipd_scale(study)
    scale = np.array([scale_centre[o][0] for o in ipd_outcomes])
    centre = np.array([scale_centre[o][1] for o in ipd_outcomes])

    arm_of = df.drop_duplicates("patient").set_index("patient")["arm"]
    order = sorted(range(len(arm_of)), key=lambda k: (arms.index(arm_of.iloc[k]), k))
    patients = arm_of.index.to_numpy()[order]
    arm_index = np.array([arms.index(a) for a in arm_of.to_numpy()[order]], dtype="int64")

    columns = pd.MultiIndex.from_product([[baseline_time, *ipd_times], ipd_outcomes], names=["time", "outcome"])
    wide = df.pivot(index="patient", columns=["time", "outcome"], values="value").reindex(
        index=patients, columns=columns
    )
    values = wide.to_numpy(dtype=float).reshape(len(patients), len(ipd_times) + 1, len(ipd_outcomes))
    baseline = (values[:, 0, :] - centre) / scale
    followup = (values[:, 1:, :] - centre) / scale

    rows = []
    observed = ~np.isnan(followup)
    for a_idx, arm in enumerate(arms):
        in_arm = arm_index == a_idx
        for k, t in enumerate(ipd_times):
            for j, o in enumerate(ipd_outcomes):
                n_obs = int(observed[in_arm, k, j].sum())
                rows.append(
                    {
                        "arm": arm,
                        "time": t,
                        "outcome": o,
                        "patients": int(in_arm.sum()),
                        "observed": n_obs,
                        "missing": int(in_arm.sum()) - n_obs,
                    }
                )
    return IPDInputs(
        outcome_index=np.array([outcomes.index(o) for o in ipd_outcomes], dtype="int64"),
        time_index=np.array([times.index(t) for t in ipd_times], dtype="int64"),
        outcomes=ipd_outcomes,
        times=ipd_times,
        patients=patients,
        arm_index=arm_index,
        baseline=baseline,
        followup=followup,
        centre=centre,
        scale=scale,
        missing=pd.DataFrame(rows),
    )


def missing_text(missing: pd.DataFrame) -> str:
    """One line: missing follow-up values per arm x time (summed over outcomes)."""
    if not len(missing):
        return "patient-level data: none"
    per = missing.groupby(["arm", "time"], sort=False)[["missing", "observed"]].sum().reset_index()
    parts = [
        f"{r.arm} t={r.time:g}: {int(r.missing)} of {int(r.missing + r.observed)}" for r in per.itertuples(index=False)
    ]
    return "missing IPD follow-up values (MAR given baseline, left out of the likelihood): " + "; ".join(parts)


def _visits(ipd: IPDInputs) -> list[str]:
    return ["baseline", *(f"{t:g}" for t in ipd.times)]


def _cell_moments(ipd: IPDInputs, patterns, values: dict[str, np.ndarray], lead: tuple[int, ...]):
    """Per arm x visit x outcome: (sum, sum of squares, count) of natural-unit scores over patients.

    ``values``: as :meth:`IPDInputs.observed_arrays`, each with ``lead`` axes in front (chain, draw
    for predictive draws; none for the data).
    """
    n_arm = 2  # reference = 0, new = 1 (prepare_ipd_inputs)
    n_t, n_o = len(ipd.times), len(ipd.outcomes)
    s1 = np.zeros((*lead, n_arm, n_t + 1, n_o))
    s2 = np.zeros_like(s1)
    count = np.zeros((n_arm, n_t + 1, n_o))
    base = values["obs_ipd_baseline"] * ipd.scale + ipd.centre
    for a in range(n_arm):
        rows = ipd.arm_index == a
        s1[..., a, 0, :] = base[..., rows, :].sum(axis=-2)
        s2[..., a, 0, :] = (base[..., rows, :] ** 2).sum(axis=-2)
        count[a, 0, :] = rows.sum()
    for name, rows, cells in patterns:
        t_of, o_of = cells // n_o, cells % n_o
        follow = values[f"obs_ipd_followup_{name}"] * ipd.scale[o_of] + ipd.centre[o_of]
        for a in range(n_arm):
            in_arm = ipd.arm_index[rows] == a
            if not in_arm.any():
                continue
            part = follow[..., in_arm, :]
            # (t, o) pairs are distinct within a pattern, so fancy-index assignment does not collide
            s1[..., a, t_of + 1, o_of] += part.sum(axis=-2)
            s2[..., a, t_of + 1, o_of] += (part**2).sum(axis=-2)
            count[a, t_of + 1, o_of] += in_arm.sum()
    return s1, s2, count


def _cell_summaries(ipd: IPDInputs, patterns, values, lead_dims: dict, arms: list[str]) -> dict[str, xr.DataArray]:
    """``ipd_cell_mean`` and ``ipd_cell_sd`` of ``values`` (see :func:`_cell_moments`)."""
    s1, s2, count = _cell_moments(ipd, patterns, values, tuple(len(c) for c in lead_dims.values()))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / count
        sd = np.sqrt(np.clip((s2 - count * mean**2) / (count - 1), 0, None))
    dims = (*lead_dims, "arm", "ipd_visit", "ipd_outcome")
    coords = {**lead_dims, "arm": list(arms), "ipd_visit": _visits(ipd), "ipd_outcome": list(ipd.outcomes)}
    return {
        "ipd_cell_mean": xr.DataArray(mean, dims=dims, coords=coords),
        "ipd_cell_sd": xr.DataArray(sd, dims=dims, coords=coords),
    }


def ipd_predictive_summary(ds: xr.Dataset, ipd: IPDInputs, arms: list[str]) -> xr.Dataset:
    """``ds`` (a predictive group) with its per-patient ``obs_ipd_*`` replicates replaced by per-cell summaries.

    A replicate of patient-level data is N x visits x outcomes numbers per draw (at 10,000 patients,
    4,000 draws: 3.8 GB), and a check one row per patient is unreadable. What a reviewer compares is
    the summary per arm x visit x outcome: the mean and SD over patients of the (observed) scores,
    natural units: ``ipd_cell_mean`` and ``ipd_cell_sd``, dims chain, draw, arm, ipd_visit ("baseline"
    and the follow-up times), ipd_outcome. A replicate counts only the cells observed in the data (the
    same missingness), so it is comparable to :func:`ipd_observed_summary`. ``inference.sample``
    applies it to each chunk of prior and posterior predictive draws; the pointwise log-likelihood
    (per patient) is kept.
    """
    patterns = ipd.patterns()
    names = list(ipd.observed_arrays(patterns))
    first = ds["obs_ipd_baseline"]
    lead_dims = {d: first.coords[d].values for d in first.dims[:2]}  # chain, draw
    values = {n: ds[n].values for n in names}
    return ds.drop_vars(names).assign(_cell_summaries(ipd, patterns, values, lead_dims, arms))


def ipd_observed_summary(ipd: IPDInputs, arms: list[str]) -> dict[str, xr.DataArray]:
    """``ipd_cell_mean`` and ``ipd_cell_sd`` of the data (dims arm, ipd_visit, ipd_outcome), for ``observed_data``."""
    patterns = ipd.patterns()
    return _cell_summaries(ipd, patterns, ipd.observed_arrays(patterns), {}, arms)


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
    if settings.patient_effects == "latent":
        mu_b, beta, baseline = _add_baseline_and_slope(ipd, settings, eta, sd_log_sigma)
        _add_latent(ipd, settings, _ipd_change(ipd, change), mu_b, beta, baseline, eta)
        return
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
    with_u = n_t > 1
    chol_e = _chol_cov(
        "ipd_residual", n_o, eta, "halfnormal", settings.residual_sd_scale, settings.residual_correlation
    )
    cov_e = chol_e @ chol_e.T
    cov_u = None
    if with_u:
        chol_u = _chol_cov("ipd_patient", n_o, eta, "halfnormal", settings.patient_sd_scale)
        cov_u = chol_u @ chol_u.T
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
        # V_SS = Sigma_u[o, o'] + 1(t = t') Sigma_e[o, o'] on the observed cells
        same_time = (t_of[:, None] == t_of[None, :]).astype(float)
        cov = same_time * cov_e[o_of[:, None], o_of[None, :]]
        if cov_u is not None:
            cov = cov + cov_u[o_of[:, None], o_of[None, :]]
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


def _add_latent(ipd: IPDInputs, settings: IPDSettings, ch, mu_b, beta, baseline, eta: float) -> None:
    """Patient effects as parameters (non-centred), independent residuals per outcome."""
    n_pat, n_t, n_o = ipd.followup.shape
    if settings.residual_correlation != "none":
        raise InputError(None, "patient_effects = 'latent' needs residual_correlation = 'none'")
    chol_u = _chol_cov("ipd_patient", n_o, eta, "halfnormal", settings.patient_sd_scale)
    sigma_e = pm.HalfNormal("ipd_residual_sd", settings.residual_sd_scale, dims="ipd_outcome")
    z_u = pm.Normal("ipd_patient_z", 0.0, 1.0, dims=("ipd_patient", "ipd_outcome"))
    u = z_u @ chol_u.T
    pat, t_idx, o_idx = np.nonzero(ipd.observed)
    model = pm.modelcontext(None)
    model.add_coord("ipd_value", np.arange(len(pat)))
    pat_d = pm.Data("ipd_value_patient", pat)
    t_d = pm.Data("ipd_value_time", t_idx)
    o_d = pm.Data("ipd_value_outcome", o_idx)
    arm = pm.Data("ipd_arm", ipd.arm_index)
    values = pm.Data("ipd_value", ipd.followup[pat, t_idx, o_idx], dims="ipd_value")
    mean = mu_b[o_d] + ch[arm[pat_d], t_d, o_d] + beta[t_d, o_d] * (baseline[pat_d, o_d] - mu_b[o_d]) + u[pat_d, o_d]
    pm.Normal("obs_ipd_followup", mu=mean, sigma=sigma_e[o_d], observed=values, dims="ipd_value")
