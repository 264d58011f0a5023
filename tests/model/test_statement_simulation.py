"""``model.terms.statement_simulation.simulate_statement_events`` against closed forms (no sampling)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from bayes_stenosis.model import simulate_statement_events, simulate_statement_statistics, statement_event_kinds

N = 200_000


def _design(kinds, comparisons, dfs, alpha=0.05):
    crit = [stats.t.ppf(1 - alpha / 2, d) if np.isfinite(d) else stats.norm.ppf(1 - alpha / 2) for d in dfs]
    return pd.DataFrame({"kind": kinds, "comparison": comparisons, "df": dfs, "crit": crit})


def _within_binomial(share, exact, n=N):
    """|share - exact| within 4 binomial SEs."""
    return abs(share - exact) < 4 * np.sqrt(exact * (1 - exact) / n) + 1e-12


def test_each_statement_is_a_noncentral_t_event():
    """P(|T| < c), P(T < -c), P(T > c) for T noncentral t(df, lambda): scipy's nct."""
    design = _design(["inside", "below", "above"], ["between", "within", "within"], [38.0, 19.0, 19.0])
    lam = np.array([0.8, -2.5, 1.2])
    events = simulate_statement_events(np.tile(lam, (N, 1)), None, design, np.random.default_rng(1))
    assert events.shape == (N, 1, 3)
    c = design["crit"].to_numpy()
    exact = [
        stats.nct.cdf(c[0], 38, lam[0]) - stats.nct.cdf(-c[0], 38, lam[0]),
        stats.nct.cdf(-c[1], 19, lam[1]),
        stats.nct.sf(c[2], 19, lam[2]),
    ]
    for k in range(3):
        assert _within_binomial(events[:, 0, k].mean(), exact[k]), (k, events[:, 0, k].mean(), exact[k])


def test_between_statements_are_correlated_as_in_the_likelihood():
    """Two z-test statements "P>0.05" with correlation r: P(both) is the bivariate normal box probability,
    not the product of the marginals."""
    design = _design(["inside", "inside"], ["between", "between"], [np.inf, np.inf])
    lam, r = np.array([1.0, 0.5]), 0.7
    corr = np.tile(np.array([[1.0, r], [r, 1.0]]), (N, 1, 1))
    events = simulate_statement_events(np.tile(lam, (N, 1)), corr, design, np.random.default_rng(2))
    c = design["crit"].to_numpy()
    mvn = stats.multivariate_normal(mean=lam, cov=[[1, r], [r, 1]])
    both = mvn.cdf(c) - mvn.cdf([-c[0], c[1]]) - mvn.cdf([c[0], -c[1]]) + mvn.cdf(-c)
    marginals = [stats.norm.cdf(c[k] - lam[k]) - stats.norm.cdf(-c[k] - lam[k]) for k in range(2)]
    share = events.all(axis=-1).mean()
    assert _within_binomial(share, both), (share, both)
    assert abs(share - np.prod(marginals)) > 10 * np.sqrt(both * (1 - both) / N)  # correlation matters here


def test_events_are_the_event_kinds_of_the_simulated_statistics():
    """``simulate_statement_events`` = whether ``statement_event_kinds`` of ``simulate_statement_statistics``
    (same generator state) is each statement's kind; the kinds split T at -c and c."""
    design = _design(["inside", "below", "above"], ["between", "between", "within"], [38.0, 38.0, 19.0])
    lam = np.random.default_rng(3).normal(0, 2, size=(500, 3))
    corr = np.tile(np.array([[1.0, 0.4], [0.4, 1.0]]), (500, 1, 1))
    events = simulate_statement_events(lam, corr, design, np.random.default_rng(4), replicates=3)
    t_stat = simulate_statement_statistics(lam, corr, design, np.random.default_rng(4), replicates=3)
    assert t_stat.shape == events.shape == (500, 3, 3)
    kinds = statement_event_kinds(t_stat, design["crit"].to_numpy())
    np.testing.assert_array_equal(events, kinds == design["kind"].to_numpy())
    assert {"inside", "below", "above"} <= set(np.unique(kinds))
    np.testing.assert_array_equal(
        statement_event_kinds(np.array([-3.0, -1.9, 0.0, 1.9, 3.0]), 2.0),
        ["below", "inside", "inside", "inside", "above"],
    )
