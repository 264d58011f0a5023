"""Decision quantities on synthetic posteriors with known answers.

Draws come from known normals, so every probability has a closed form; tolerances are 4 MCSE
(MCSE reported by the code itself, checked against sqrt(p (1 - p) / N) for independent draws).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayes_stenosis import decisions as dec

MU = {"ODI": -2.0, "RMDQ": 1.0}
SD = {"ODI": 5.0, "RMDQ": 2.0}
MARGINS = {"ODI": 10.0, "RMDQ": 2.5}
LOWER = {"ODI": "lower_is_better", "RMDQ": "lower_is_better"}
CHAINS, DRAWS = 4, 5000


def _draws(seed=1, mu=MU, sd=SD):
    rng = np.random.default_rng(seed)
    outcomes = list(mu)
    values = np.stack([rng.normal(mu[o], sd[o], size=(CHAINS, DRAWS, 1)) for o in outcomes], axis=-1)
    return xr.DataArray(values, dims=("chain", "draw", "time", "outcome"), coords={"time": [4.0], "outcome": outcomes})


def test_cell_probabilities_match_closed_form_within_mcse():
    delta = _draws()
    table = dec.decision_table(delta, MARGINS, LOWER, dec.DecisionRule())
    cells = table[table.scope == "cell"].set_index("outcome")
    for o in MU:
        dist, m = stats.norm(MU[o], SD[o]), MARGINS[o]
        exact = {
            "prob_equivalence": dist.cdf(m) - dist.cdf(-m),
            "prob_noninferiority": dist.cdf(m),  # lower is better: new not worse by more than m
            "prob_superiority": dist.cdf(0),
            "prob_harm_beyond_margin": dist.sf(m),
        }
        for name, value in exact.items():
            mcse = cells.loc[o, f"mcse_{name}"]
            assert abs(cells.loc[o, name] - value) < 4 * mcse + 1e-12, (o, name)
            # independent draws: the MCSE is the binomial SE, within 20 %
            binomial = np.sqrt(value * (1 - value) / (CHAINS * DRAWS))
            if binomial > 1e-4:
                assert mcse == pytest.approx(binomial, rel=0.2), (o, name)


def test_higher_is_better_flips_the_one_sided_probabilities():
    delta = _draws()
    higher = dict.fromkeys(MU, "higher_is_better")
    t_low = dec.decision_table(delta, MARGINS, LOWER, dec.DecisionRule()).set_index("outcome")
    t_high = dec.decision_table(delta, MARGINS, higher, dec.DecisionRule()).set_index("outcome")
    dist = stats.norm(MU["ODI"], SD["ODI"])
    assert abs(t_high.loc["ODI", "prob_superiority"] - dist.sf(0)) < 4 * t_high.loc["ODI", "mcse_prob_superiority"]
    assert (
        abs(t_high.loc["ODI", "prob_noninferiority"] - dist.sf(-10)) < 4 * t_high.loc["ODI", "mcse_prob_noninferiority"]
    )
    # equivalence does not depend on the direction
    assert t_high.loc["ODI", "prob_equivalence"] == t_low.loc["ODI", "prob_equivalence"]


def test_joint_probabilities_on_hand_built_draws():
    # 1 chain x 4 draws, two outcomes, margins 10 and 2.5
    values = np.array([[[[1.0, 1.0]], [[11.0, 0.0]], [[-3.0, 3.0]], [[-12.0, -4.0]]]])
    delta = xr.DataArray(
        values, dims=("chain", "draw", "time", "outcome"), coords={"time": [4.0], "outcome": ["ODI", "RMDQ"]}
    )
    table = dec.decision_table(delta, MARGINS, LOWER, dec.DecisionRule())
    joint = table.set_index("scope")
    # both inside: draw 1 only -> 1/4; any outside: draws 2, 3, 4 -> 3/4
    assert joint.loc["joint_all", "prob_equivalence"] == 0.25
    assert joint.loc["any_beyond_margin", "prob_not_equivalent"] == 0.75
    # both non-inferior (delta < m): draws 1, 4 -> 1/2 (draw 2: ODI 11 > 10; draw 3: RMDQ 3 > 2.5)
    assert joint.loc["joint_all", "prob_noninferiority"] == 0.5
    # both superior (delta < 0): draw 4 only
    assert joint.loc["joint_all", "prob_superiority"] == 0.25


def test_decision_rule():
    rule = dec.DecisionRule(0.975)
    assert rule.decide(0.98) == "equivalent"
    assert rule.decide(0.02) == "not equivalent"
    assert rule.decide(0.5) == "undecided"
    assert dec.DecisionRule(0.9).decide(0.92) == "equivalent"
    assert "0.975" in rule.text


def test_prior_columns_and_margin_curve():
    delta = _draws()
    prior = _draws(seed=2, mu={"ODI": 0.0, "RMDQ": 0.0}, sd={"ODI": 20.0, "RMDQ": 10.0}).isel(chain=[0])
    table = dec.decision_table(delta, MARGINS, LOWER, dec.DecisionRule(), prior_delta_natural=prior)
    odi = table[(table.scope == "cell") & (table.outcome == "ODI")].iloc[0]
    exact_prior = stats.norm(0, 20).cdf(10) - stats.norm(0, 20).cdf(-10)
    assert abs(odi["prob_equivalence_prior"] - exact_prior) < 4 * np.sqrt(exact_prior * (1 - exact_prior) / DRAWS)
    curves = dec.margin_curves(delta, MARGINS, n_grid=21)
    odi_curve = curves[curves.outcome == "ODI"]
    assert odi_curve.default_margin.sum() == 1 and odi_curve.margin.max() == pytest.approx(20.0)
    dist = stats.norm(MU["ODI"], SD["ODI"])
    exact = dist.cdf(odi_curve.margin) - dist.cdf(-odi_curve.margin)
    assert np.all(np.abs(odi_curve.prob_equivalence - exact) <= 4 * odi_curve.mcse + 1e-12)


def test_contrast_summary_interval_matches_normal_quantiles():
    delta = _draws()
    summary = dec.summarise_contrasts(delta, delta / 16.0, dec.IntervalSpec(), LOWER, ("new", "reference"))
    row = summary.set_index("outcome").loc["ODI"]
    assert abs(row.lower_natural - stats.norm.ppf(0.025, -2, 5)) < 4 * row.mcse_lower_natural
    assert abs(row.upper_natural - stats.norm.ppf(0.975, -2, 5)) < 4 * row.mcse_upper_natural
    assert abs(row.mean_natural + 2) < 4 * row.mcse_mean_natural
    assert row.interval_kind == "eti" and row.interval_prob == 0.95 and row.favours_if_negative == "new"


def test_normal_approximation_recovers_a_bivariate_normal_and_validates():
    rng = np.random.default_rng(3)
    cov = np.array([[25.0, 0.6 * 5 * 2], [0.6 * 5 * 2, 4.0]])
    x = rng.multivariate_normal([-2.0, 1.0], cov, size=(CHAINS, DRAWS))[:, :, None, :]
    delta = xr.DataArray(
        x, dims=("chain", "draw", "time", "outcome"), coords={"time": [4.0], "outcome": ["ODI", "RMDQ"]}
    )
    approx = dec.normal_approximation(delta, delta / 10, MARGINS, {"ODI": "points", "RMDQ": "points"})
    n = CHAINS * DRAWS
    assert np.all(np.abs(np.array(approx["mean_natural"]) - [-2.0, 1.0]) < 4 * np.sqrt(np.diag(cov) / n))
    # SE of a sample covariance ~ sqrt((s_ij^2 + s_ii s_jj) / n)
    se_cov = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    assert np.all(np.abs(np.array(approx["covariance_natural"]) - cov) < 4 * se_cov)
    assert all(f["ks_distance"] < 0.02 for f in approx["marginal_fit"])
    dec.validate_approximation(approx)
    broken = dict(approx, covariance_natural=[[1.0, 0.5], [0.2, 1.0]])
    with pytest.raises(ValueError, match="symmetric"):
        dec.validate_approximation(broken)
    with pytest.raises(ValueError, match="length"):
        dec.validate_approximation(dict(approx, units=["points"]))
    with pytest.raises(ValueError, match="missing"):
        dec.validate_approximation({k: v for k, v in approx.items() if k != "names"})
