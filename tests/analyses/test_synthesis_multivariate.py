r"""The multivariate synthesis (``analyses/synthesis/multivariate.py`` and ``joint.py``) against closed forms.

* Fixed (tau, r), normal mu prior: the pooled posterior is the Gaussian conditioning of the stacked model
  :math:`y = P\mu + e`, written here independently of the engine's precision form (tolerance 1e-9 relative:
  the engine is exact); the joint probabilities, which come from draws, within 4 binomial Monte Carlo SEs of
  scipy's MVN rectangle probability.
* One cell: the univariate grid's answer (normal prior: :data:`GRID_TOL` of an SD, the grid's discretisation;
  Student-t prior, by importance sampling: 4 Monte Carlo SEs).
* r = 0 and diagonal likelihood covariances: each cell is its own univariate synthesis.
* A study lacking a cell contributes the marginal of its observed sub-vector.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayes_stenosis.analyses.synthesis import (
    Likelihood,
    MvLikelihood,
    correlation_prior,
    effect_prior,
    heterogeneity_prior,
    mv_posterior,
    mv_summary,
    posterior_grid,
    read_study,
    summarize_grid,
    synthesize_multivariate,
)
from bayes_stenosis.errors import InputError, SynthesisError
from tests.analyses.synthesis_closed_forms import GRID_TOL

MARGINS = np.array([0.5, 0.6])
S0 = 1.0  # the normal mu prior's SD

# two studies with both cells (correlated likelihoods), one with cell 0 only
LIKS = [
    MvLikelihood(np.array([0, 1]), np.array([0.10, -0.20]), np.array([[0.09, 0.03], [0.03, 0.16]])),
    MvLikelihood(np.array([0, 1]), np.array([0.25, 0.05]), np.array([[0.05, -0.01], [-0.01, 0.07]])),
    MvLikelihood(np.array([0]), np.array([0.30]), np.array([[0.06]])),
]


def closed_form(liks, tau, r, k=2):
    """mu | y for mu ~ N(0, S0^2 I): stacked y = P mu + e, Cov(e) = blockdiag(S_i + P_i T P_i^T)."""
    big_t = tau**2 * ((1 - r) * np.eye(k) + r * np.ones((k, k)))
    rows, blocks = [], []
    for lik in liks:
        sel = np.eye(k)[lik.cells]
        rows.append(sel)
        blocks.append(lik.cov + sel @ big_t @ sel.T)
    p = np.vstack(rows)
    n = p.shape[0]
    cov_e = np.zeros((n, n))
    start = 0
    for b in blocks:
        cov_e[start : start + len(b), start : start + len(b)] = b
        start += len(b)
    y = np.concatenate([lik.mean for lik in liks])
    cov_y = S0**2 * p @ p.T + cov_e
    gain = S0**2 * p.T @ np.linalg.inv(cov_y)
    return gain @ y, S0**2 * np.eye(k) - gain @ p * S0**2, big_t


def box(mean, cov, margins):
    dist = stats.multivariate_normal(mean, cov, seed=1, abseps=1e-8, releps=1e-8)
    return dist.cdf(margins, lower_limit=-margins)


def summary(liks, k, mu="normal:1", tau="fixed:0.3", r="fixed:0.4", margins=MARGINS, n_tau=200):
    mu_p = effect_prior(mu)
    post = mv_posterior(liks, k, mu_p, heterogeneity_prior(tau), correlation_prior(r), n_tau=n_tau)
    return mv_summary(post, mu_p, margins, seed=3)[0]


def test_fixed_tau_and_r_give_the_conjugate_mvn_answer():
    mean, cov, big_t = closed_form(LIKS, 0.3, 0.4)
    out = summary(LIKS, 2)
    for j in range(2):
        sd, new_sd = np.sqrt(cov[j, j]), np.sqrt(cov[j, j] + big_t[j, j])
        pooled, new = out["cells"][j]["pooled"], out["cells"][j]["new_study"]
        assert pooled["mean"] == pytest.approx(mean[j], rel=1e-9)
        assert pooled["sd"] == pytest.approx(sd, rel=1e-9)
        assert pooled["interval_low"] == pytest.approx(mean[j] - 1.959964 * sd, abs=1e-6)
        p = stats.norm.cdf(MARGINS[j], mean[j], sd) - stats.norm.cdf(-MARGINS[j], mean[j], sd)
        assert pooled["prob_equivalence"] == pytest.approx(p, abs=1e-9)
        assert new["sd"] == pytest.approx(new_sd, rel=1e-9)
        p_new = stats.norm.cdf(MARGINS[j], mean[j], new_sd) - stats.norm.cdf(-MARGINS[j], mean[j], new_sd)
        assert new["prob_equivalence"] == pytest.approx(p_new, abs=1e-9)
    joint = out["joint_prob_equivalence"]
    for key, c in (("pooled", cov), ("new_study", cov + big_t)):
        exact = box(mean, c, MARGINS)
        assert abs(joint[key]["prob"] - exact) < 4 * joint[key]["mcse"], (key, joint[key], exact)
    assert out["r"]["median"] == pytest.approx(0.4) and out["tau"]["median"] == pytest.approx(0.3)


def test_a_study_lacking_a_cell_contributes_its_marginal():
    """The third study reports cell 0 only: the engine equals the closed form with its selection matrix, and
    differs from treating its missing cell as observed at 0 with a large variance only by that variance."""
    mean, cov, _ = closed_form(LIKS, 0.3, 0.4)
    out = summary(LIKS, 2)
    got = [out["cells"][j]["pooled"]["mean"] for j in range(2)]
    assert got == pytest.approx(list(mean), rel=1e-9)
    vague = MvLikelihood(np.array([0, 1]), np.array([0.30, 0.0]), np.array([[0.06, 0.0], [0.0, 1e8]]))
    near = summary([*LIKS[:2], vague], 2)
    assert [near["cells"][j]["pooled"]["mean"] for j in range(2)] == pytest.approx(got, abs=1e-6)


def univariate(y, se, mu, tau, margin):
    liks = [Likelihood.normal(a, b) for a, b in zip(y, se, strict=True)]
    grid = posterior_grid(liks, effect_prior(mu), heterogeneity_prior(tau))
    return summarize_grid(grid, liks, margin)


@pytest.mark.parametrize("mu", ["normal:1", "weakly_informative"])
def test_one_cell_equals_the_univariate_grid(mu):
    y, se = np.array([0.1, 0.3, -0.2]), np.array([0.3, 0.22, 0.4])
    liks = [MvLikelihood(np.array([0]), np.array([a]), np.array([[b**2]])) for a, b in zip(y, se, strict=True)]
    out = summary(liks, 1, mu=mu, tau="bartos2021_back_and_neck", r="uniform", margins=np.array([0.5]), n_tau=600)
    ref = univariate(y, se, mu, "bartos2021_back_and_neck", 0.5)
    ess = out["engine"]["effective_draws"]
    assert out["r"] is None
    for key in ("pooled", "new_study"):
        got, want = out["cells"][0][key], ref[key]
        if mu.startswith("normal"):
            assert abs(got["mean"] - want["mean"]) < GRID_TOL * want["sd"]
            assert abs(got["sd"] - want["sd"]) < GRID_TOL * want["sd"]
            assert abs(got["prob_equivalence"] - want["prob_equivalence"]) < GRID_TOL
        else:
            assert abs(got["mean"] - want["mean"]) < 4 * want["sd"] / np.sqrt(ess)
            assert abs(got["prob_equivalence"] - want["prob_equivalence"]) < 4 * got["mcse_prob_equivalence"]
    if mu.startswith("normal"):
        assert out["tau"]["mean"] == pytest.approx(ref["tau"]["mean"], rel=1e-6)


@pytest.mark.parametrize("mu", ["normal:1", "weakly_informative"])
def test_independent_cells_are_their_own_univariate_syntheses(mu):
    """r = 0 and diagonal S_i at a fixed tau: the cells do not inform each other."""
    y = np.array([[0.1, -0.2], [0.25, 0.05], [-0.1, 0.3]])
    se = np.array([[0.3, 0.4], [0.22, 0.26], [0.35, 0.3]])
    liks = [MvLikelihood(np.array([0, 1]), y[i], np.diag(se[i] ** 2)) for i in range(3)]
    out = summary(liks, 2, mu=mu, tau="fixed:0.2", r="fixed:0")
    ess = out["engine"]["effective_draws"]
    for j in range(2):
        ref = univariate(y[:, j], se[:, j], mu, "fixed:0.2", MARGINS[j])
        got, want = out["cells"][j]["pooled"], ref["pooled"]
        if mu.startswith("normal"):
            assert abs(got["mean"] - want["mean"]) < GRID_TOL * want["sd"]
            assert abs(got["prob_equivalence"] - want["prob_equivalence"]) < GRID_TOL
        else:
            assert abs(got["mean"] - want["mean"]) < 4 * want["sd"] / np.sqrt(ess)
            assert abs(got["prob_equivalence"] - want["prob_equivalence"]) < 4 * got["mcse_prob_equivalence"]


def test_the_between_correlation_option_is_checked():
    with pytest.raises(InputError, match="uniform or fixed:R"):
        correlation_prior("beta")
    with pytest.raises(InputError, match=r"\(-1, 1\)"):
        correlation_prior("fixed:1")
    three = [MvLikelihood(np.array([0, 1, 2]), np.zeros(3), np.eye(3) * 0.04)]
    with pytest.raises(InputError, match=r"r must lie in \(-0.5, 1\)"):
        summary(three, 3, r="fixed:-0.6", margins=np.full(3, 0.5))


def test_runs_enter_through_their_joint_likelihood(synthesis_runs):
    runs = [synthesis_runs[k] for k in ("both_a", "both_b", "a")]
    result = synthesize_multivariate(runs, [("VAS", 4), ("ODI", 4)], mu_prior="normal:1")
    both = read_study(synthesis_runs["both_a"], "ODI", 4, mode="normal")
    assert result.likelihoods[0].mean[1] == pytest.approx(both.likelihood_std.mean)
    assert result.likelihoods[0].cov[1, 1] == pytest.approx(both.likelihood_std.sd**2)
    only = read_study(synthesis_runs["a"], "VAS", 4, mode="normal")
    assert list(result.likelihoods[2].cells) == [0]
    assert result.likelihoods[2].mean[0] == pytest.approx(only.likelihood_std.mean)
    assert any("trial_a lacks ODI@4" in note for note in result.notes)
    assert result.scale.startswith("standardized")  # VAS in mm and ODI in points
    assert list(result.margins) == pytest.approx([15 / 20, 10 / 16])
    record = result.record()
    assert record["priors"]["r"]["family"] == "uniform" and record["priors"]["r"]["source"]
    assert record["engine"]["route"].startswith("exact")
    table = result.table()
    assert list(table["row"]).count("study") == 5
    assert {"joint_pooled", "joint_new_study", "tau", "r"} <= set(table["row"])


def test_multivariate_refusals(synthesis_runs):
    cells = [("VAS", 4), ("ODI", 4)]
    with pytest.raises(SynthesisError, match="no run has evidence for ODI@4"):
        synthesize_multivariate([synthesis_runs["a"], synthesis_runs["b"]], cells)
    with pytest.raises(SynthesisError, match="--scale natural needs one unit"):
        synthesize_multivariate([synthesis_runs["both_a"], synthesis_runs["both_b"]], cells, scale="natural")
    with pytest.raises(SynthesisError, match="joint normal likelihood"):
        synthesize_multivariate([synthesis_runs["both_a"]], cells, likelihood="reweighted")
    with pytest.raises(SynthesisError, match="more than once"):
        synthesize_multivariate([synthesis_runs["both_a"], synthesis_runs["both_a"]], cells)
    with pytest.raises(SynthesisError, match="none of the cells"):
        synthesize_multivariate([synthesis_runs["both_a"], synthesis_runs["a"]], [("ODI", 4)])
