"""The flagship posterior against an exact answer computed without the package's model code.

Rejection sampling: draw every parameter from the prior (numpy, written here from the spec's numbers),
simulate the 24 reported statements from the generative model the likelihood encodes, and keep the draws
whose statements all come out as reported. The kept draws are exact posterior draws, so P(|delta| < m)
among them is the exact posterior probability up to binomial error. NUTS on the package's model must
agree within 3 combined Monte Carlo SEs, with and without outcome pooling. The SEs are those under the
hypothesis being tested (the score test of a proportion): the exact p's binomial variance over the kept
draws and over the NUTS indicator's effective sample size (from its MCSE). The SE at NUTS's own estimate,
used before, is too small near 1: three draws of 6,000 outside the margin (0.9995 against an exact 0.9979)
gave 0.0004, a 3.9-SE "difference" that is 2.4 SEs under the hypothesis (the week-4 RMDQ cell, seed 5,
after the joint term became one operation: the same log density to 1e-16, other chains; seeds 6-8 gave at
most 1.7 SEs either way).

The default model (``thresholds.statement_dependence = "joint"``): per arm, the standardized errors of the
mean changes of the 8 cells are MVN(0, R_time x R_outcome), each arm's SD ratio per cell
S_a = sqrt(chi2(n_a - 1) / (n_a - 1)); within an arm T = (lambda_a + z_a) / S_a, between arms
T = (w (lambda_new + z_new) - w (lambda_ref + z_ref)) / S_b with w = 1/sqrt(2) (equal arms) and the pooled
S_b = sqrt((S_ref^2 + S_new^2) / 2). The per-statement model (``"independent"``): between-arm statistics
correlated across cells as R, within-arm statistics independent, each T = (Z + lambda) / S with
S^2 ~ chi2(df)/df.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import bayes_stenosis as bs
from bayes_stenosis.spec import load_spec
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import spec_variant

pytestmark = pytest.mark.slow

PRIOR_DRAWS = 6_000_000
CHUNK = 500_000


def _prior_chunk(spec, instruments, n_time, n, rng, pooled):
    """One chunk of prior draws of delta, the arms' changes and the SD / correlation parameters."""
    h, c, sc = spec.hierarchy, spec.correlation, spec.scale
    n_out = len(instruments)
    mu = rng.normal(0, h.mu_change_sigma, (n, n_time))
    sigma = rng.gamma(2.0, h.sigma_change_scale / 2.0, n)  # Gamma(shape 2, rate 2 / scale)
    theta_ref = mu[:, :, None] + sigma[:, None, None] * rng.standard_normal((n, n_time, n_out))
    prior = spec.prior_sets["weakly_informative"]
    if pooled:
        big_delta = prior.mu + prior.sigma * rng.standard_t(prior.nu, (n, n_time))
        tau = np.abs(rng.normal(0, h.tau_scale, n))
        delta = big_delta[:, :, None] + tau[:, None, None] * rng.standard_normal((n, n_time, n_out))
    else:
        delta = prior.mu + prior.sigma * rng.standard_t(prior.nu, (n, n_time, n_out))
    rho = np.stack([rng.beta(c.baseline_followup(i).alpha, c.baseline_followup(i).beta, n) for i in instruments], 1)
    q = np.exp(sc.trial_sd_log_ratio_sigma * rng.standard_normal((n, n_out)))
    r = np.exp(np.log(sc.followup_sd_ratio_median) + sc.followup_sd_ratio_log_sd * rng.standard_normal((n, n_out)))
    sd_change = q * np.sqrt(1 + r**2 - 2 * rho * r)
    r_time = c.max_error_correlation * rng.beta(c.time.alpha, c.time.beta, n)
    r_out = c.max_error_correlation * rng.beta(c.outcome.alpha, c.outcome.beta, n)
    return delta, theta_ref, theta_ref + delta, sd_change, r_time, r_out


def _cell_corr_cholesky(r_time, r_out, n_time, n_out):
    """Cholesky factors of R_time (x) R_outcome over the cells, time-major like delta.reshape."""
    k = n_time * n_out
    t_idx, o_idx = np.divmod(np.arange(k), n_out)
    same_t, same_o = t_idx[:, None] == t_idx[None, :], o_idx[:, None] == o_idx[None, :]
    rt = np.where(same_t, 1.0, r_time[:, None, None])
    ro = np.where(same_o, 1.0, r_out[:, None, None])
    return np.linalg.cholesky(rt * ro)


def _statements_hold_joint(delta, ref, new, sd_change, r_time, r_out, n_arm, rng):
    """All 24 statements, simulated jointly from each arm's mean changes and SDs (module docstring)."""
    n, n_time, n_out = delta.shape
    k = n_time * n_out
    chol = _cell_corr_cholesky(r_time, r_out, n_time, n_out)
    sd = np.tile(sd_change, (1, n_time))
    df_w = n_arm - 1
    crit_w, crit_b = stats.t.ppf(0.975, df_w), stats.t.ppf(0.975, 2 * n_arm - 2)
    u, s = [], []
    for change in (ref, new):
        z = np.einsum("nij,nj->ni", chol, rng.standard_normal((n, k)))
        u.append(change.reshape(n, k) * np.sqrt(n_arm) / sd + z)  # the mean change / (sigma / sqrt(n))
        s.append(np.sqrt(rng.chisquare(df_w, (n, k)) / df_w))
    ok = np.ones(n, dtype=bool)
    for u_arm, s_arm in zip(u, s, strict=True):  # lower is better: an improvement is T < -c
        ok &= (u_arm / s_arm < -crit_w).all(1)
    t_b = (u[1] - u[0]) / np.sqrt(2) / np.sqrt((s[0] ** 2 + s[1] ** 2) / 2)
    return ok & (np.abs(t_b) < crit_b).all(1)


def _statements_hold_independent(delta, ref, new, sd_change, r_time, r_out, n_arm, rng):
    """All 8 "P>0.05 between" and 16 "P<0.05 improvement within" statements come out as reported."""
    n, n_time, n_out = delta.shape
    k = n_time * n_out
    # between: Z ~ MVN(0, R_time (x) R_outcome) over the cells, time-major like delta.reshape
    z = np.einsum("nij,nj->ni", _cell_corr_cholesky(r_time, r_out, n_time, n_out), rng.standard_normal((n, k)))
    df_b = 2 * n_arm - 2
    se_b = np.sqrt(2 / n_arm)
    lam_b = delta.reshape(n, k) / (np.tile(sd_change, (1, n_time)) * se_b)
    t_b = (z + lam_b) / np.sqrt(rng.chisquare(df_b, (n, k)) / df_b)
    ok = (np.abs(t_b) < stats.t.ppf(0.975, df_b)).all(1)
    df_w = n_arm - 1
    for change in (ref, new):  # lower is better: an improvement is T < -c
        lam_w = change.reshape(n, k) * np.sqrt(n_arm) / np.tile(sd_change, (1, n_time))
        t_w = (rng.standard_normal((n, k)) + lam_w) / np.sqrt(rng.chisquare(df_w, (n, k)) / df_w)
        ok &= (t_w < -stats.t.ppf(0.975, df_w)).all(1)
    return ok


def _exact(spec, study, pooled, seed=11):
    statements_hold = (
        _statements_hold_joint if spec.thresholds.statement_dependence == "joint" else _statements_hold_independent
    )
    outcomes = study.outcomes
    instruments = [study.outcome(o).instrument for o in outcomes]
    margins_std = np.array([study.outcome(o).margin / study.outcome(o).reference_sd for o in outcomes])
    n_arm = study.meta.study.n_randomised_total / 2  # the equal split of an unknown per-arm n
    rng = np.random.default_rng(seed)
    inside, kept = np.zeros((len(study.times), len(outcomes))), 0
    for _ in range(PRIOR_DRAWS // CHUNK):
        delta, ref, new, sd, r_time, r_out = _prior_chunk(spec, instruments, len(study.times), CHUNK, rng, pooled)
        ok = statements_hold(delta, ref, new, sd, r_time, r_out, n_arm, rng)
        inside += (np.abs(delta[ok]) < margins_std).sum(0)
        kept += int(ok.sum())
    return inside / kept, kept


def null_se(p, kept, estimate, mcse, idata):
    """SE of (NUTS estimate - exact) under equality: p(1 - p) / kept + p(1 - p) / ESS, with the ESS of the
    NUTS indicator from its MCSE (estimate (1 - estimate) / MCSE^2; every draw when the MCSE is 0)."""
    draws = idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"]
    ess = estimate * (1 - estimate) / mcse**2 if mcse > 0 else draws
    return np.sqrt(p * (1 - p) * (1 / kept + 1 / ess))


@pytest.mark.parametrize(
    ("pooling", "dependence"), [("partial", "joint"), ("none", "joint"), ("partial", "independent")]
)
def test_flagship_posterior_matches_exact_rejection_sampling(pooling, dependence):
    spec, _ = load_spec("default")
    assert spec.thresholds.statement_dependence == "joint"
    if pooling == "none" or dependence != "joint":
        spec = spec_variant(hierarchy={"outcome_pooling": pooling}, thresholds={"statement_dependence": dependence})
    study = load_study("farpour2022")
    exact, kept = _exact(spec, study, pooled=pooling == "partial")
    fit = bs.fit_study(study, spec=spec, seed=5, posterior_predictive=False, prior_var_names=["delta_natural"])
    cells = fit.decisions[fit.decisions.scope == "cell"]
    print(f"\n{pooling} pooling, {dependence} statements: {kept} of {PRIOR_DRAWS} prior draws kept")
    for rec in cells.to_dict("records"):
        i, j = study.times.index(rec["time"]), study.outcomes.index(rec["outcome"])
        p = exact[i, j]
        se = null_se(p, kept, rec["prob_equivalence"], rec["mcse_prob_equivalence"], fit.idata)
        print(f"  week {rec['time']:g} {rec['outcome']}: NUTS {rec['prob_equivalence']:.4f}, exact {p:.4f}, "
              f"difference / combined SE {(rec['prob_equivalence'] - p) / se:+.2f}")  # fmt: skip
        assert abs(rec["prob_equivalence"] - p) < 3 * se, (rec["time"], rec["outcome"], rec["prob_equivalence"], p, se)
