"""The frequentist references of the patient-level model: per-cell OLS ANCOVA and the unstructured MMRM."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import optimize

from bayes_stenosis.calibration.external_ipd import simulate_external
from bayes_stenosis.stats.repeated_measures import ancova_ols, mmrm_gls


def test_ancova_ols_equals_statsmodels_on_every_cell_with_missing_values():
    trial = simulate_external("baseline_dropout", 40, seed=3)
    got = ancova_ols(trial.arm, trial.baseline, trial.followup)
    for t in range(trial.followup.shape[1]):
        for o in range(trial.followup.shape[2]):
            keep = ~np.isnan(trial.followup[:, t, o])
            x = sm.add_constant(np.column_stack([trial.arm[keep], trial.baseline[keep, o]]))
            fit = sm.OLS(trial.followup[keep, t, o], x).fit()
            assert got.estimate[t, o] == pytest.approx(fit.params[1], rel=1e-10)
            assert got.se[t, o] == pytest.approx(fit.bse[1], rel=1e-10)
            assert got.n[t, o] == keep.sum()


def test_mmrm_with_complete_data_and_one_outcome_is_ols():
    """Seemingly-unrelated regression with the same regressors in every equation is OLS per equation,
    and the ML covariance rescaled by N/(N-3) gives OLS's SE exactly."""
    trial = simulate_external("unstructured", 30, seed=5)
    base, follow = trial.baseline[:, [1]], trial.followup[:, :, [1]]
    ols = ancova_ols(trial.arm, base, follow)
    gls = mmrm_gls(trial.arm, base, follow)
    np.testing.assert_allclose(gls.estimate, ols.estimate, rtol=1e-8)
    np.testing.assert_allclose(gls.se, ols.se, rtol=1e-6)


def _neg_loglik(params, arm, base, y):
    """-log L of the two-visit, one-outcome MMRM with missing values (NaN), for a direct optimiser."""
    coef = params[:6].reshape(2, 3)
    chol = np.array([[np.exp(params[6]), 0.0], [params[7], np.exp(params[8])]])
    cov = chol @ chol.T
    mean = coef[:, 0] + coef[:, 1] * arm[:, None] + coef[:, 2] * base[:, None]
    total = 0.0
    for i in range(len(arm)):
        seen = ~np.isnan(y[i])
        r = y[i, seen] - mean[i, seen]
        c = cov[np.ix_(seen, seen)]
        total += 0.5 * (r @ np.linalg.solve(c, r) + np.linalg.slogdet(c)[1])
    return total


def test_mmrm_with_missing_values_is_the_maximum_likelihood_estimate():
    """EM-GLS reaches the optimum a direct optimiser of the MVN likelihood finds (missing at random)."""
    trial = simulate_external("baseline_dropout", 25, seed=11)
    base, follow = trial.baseline[:, 0], trial.followup[:, :, 0]
    assert np.isnan(follow).any()
    got = mmrm_gls(trial.arm, base[:, None], follow[:, :, None])
    start = np.concatenate([np.tile([0.0, 0.0, 0.5], 2), [np.log(10.0), 0.0, np.log(10.0)]])
    res = optimize.minimize(_neg_loglik, start, args=(trial.arm, base, follow), method="BFGS", options={"gtol": 1e-7})
    direct = res.x[:6].reshape(2, 3)[:, 1]
    np.testing.assert_allclose(got.estimate[:, 0], direct, atol=1e-3 * got.se.min())
