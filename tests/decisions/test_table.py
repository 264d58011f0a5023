"""``decisions.table``: the decision table on synthetic posteriors with known answers.

Draws come from known normals (independent draws, seeded), so every probability, quantile and
moment has a closed form. Tolerances are stated in Monte Carlo standard errors (MCSE): an estimate
must lie within 4 MCSE of its closed form, where the MCSE is the one the code itself reports
(and, for independent draws, that MCSE is checked against the binomial/normal-theory value).
Joint probabilities are checked exactly on small hand-built draws that can be counted by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayes_stenosis import decisions as dec
from tests.decisions.known_normals import (
    DRAWS,
    HIGHER,
    LOWER,
    MARGINS,
    MU,
    SD,
    N,
    Z,
    draws_by_cell,
    normal_draws,
    standardised,
)


@pytest.fixture(scope="module")
def table(delta) -> dict:
    return dec.decision_table(delta, MARGINS, LOWER, dec.DecisionRule())


def _exact(o: str, direction: str) -> dict[str, float]:
    dist, m = stats.norm(MU[o], SD[o]), MARGINS[o]
    if direction == "lower_is_better":
        noninf, sup = dist.cdf(m), dist.cdf(0)  # P(delta < m), P(delta < 0)
    else:
        noninf, sup = dist.sf(-m), dist.sf(0)  # P(delta > -m), P(delta > 0)
    eq = dist.cdf(m) - dist.cdf(-m)
    return {
        "prob_equivalence": eq,
        "prob_noninferiority": noninf,
        "prob_superiority": sup,
        "prob_harm_beyond_margin": 1 - noninf,
        "prob_not_equivalent": 1 - eq,
    }


# --- closed forms ------------------------------------------------------------------------


def test_cell_probabilities_match_closed_form_within_mcse(table):
    cells = table[table.scope == "cell"].set_index("outcome")
    assert list(cells.index) == ["ODI", "RMDQ"] and (cells.time == 4.0).all()
    for o in MU:
        assert cells.loc[o, "margin"] == MARGINS[o] and cells.loc[o, "direction"] == "lower_is_better"
        for name, value in _exact(o, "lower_is_better").items():
            p, mcse = cells.loc[o, name], cells.loc[o, f"mcse_{name}"]
            # estimate within 4 reported MCSE of the closed form
            assert abs(p - value) < Z * mcse, (o, name, p, value, mcse)
            # independent draws: the reported MCSE is the binomial SE sqrt(p (1 - p) / N), within 20 %
            assert mcse == pytest.approx(np.sqrt(value * (1 - value) / N), rel=0.2), (o, name)
        # complements hold exactly, draw by draw
        assert cells.loc[o, "prob_not_equivalent"] == pytest.approx(1 - cells.loc[o, "prob_equivalence"], abs=1e-12)
        assert cells.loc[o, "prob_harm_beyond_margin"] == pytest.approx(
            1 - cells.loc[o, "prob_noninferiority"], abs=1e-12
        )


def test_no_p_value_like_columns(table, delta):
    curves = dec.margin_curves(delta, MARGINS, n_grid=5)
    summary = dec.summarise_contrasts(delta, standardised(delta), dec.IntervalSpec(), LOWER, ("new", "ref"))
    for frame in (table, curves, summary):
        for col in frame.columns:
            assert not col.lower().startswith(("p_", "pval", "p-")) and "p_value" not in col.lower(), col


def test_higher_is_better_flips_noninferiority_and_superiority(delta, table):
    high = dec.decision_table(delta, MARGINS, HIGHER, dec.DecisionRule())
    low_cells = table[table.scope == "cell"].set_index("outcome")
    high_cells = high[high.scope == "cell"].set_index("outcome")
    for o in MU:
        exact = _exact(o, "higher_is_better")
        for name in ("prob_noninferiority", "prob_superiority", "prob_harm_beyond_margin"):
            # 4 MCSE of the closed form under the flipped direction
            assert abs(high_cells.loc[o, name] - exact[name]) < Z * high_cells.loc[o, f"mcse_{name}"], (o, name)
        # equivalence is symmetric in delta: identical whatever the direction
        assert high_cells.loc[o, "prob_equivalence"] == low_cells.loc[o, "prob_equivalence"]
    # flipping the sign of the draws and the direction together changes nothing
    mirrored = dec.decision_table(-delta, MARGINS, HIGHER, dec.DecisionRule())
    cols = [f"prob_{n}" for n in ("equivalence", "noninferiority", "superiority", "harm_beyond_margin")]
    np.testing.assert_allclose(mirrored[cols].to_numpy(float), table[cols].to_numpy(float), atol=1e-12)
    # superiority under "higher" is the complement of "lower" (P(delta = 0) = 0 for continuous draws)
    assert high_cells.loc["ODI", "prob_superiority"] == pytest.approx(1 - low_cells.loc["ODI", "prob_superiority"])


def test_decisions_in_the_table_follow_the_rule():
    # ODI ~ N(0, 1), m = 10: equivalent; RMDQ ~ N(30, 1), m = 2.5: not equivalent (no draw inside)
    clear = normal_draws(seed=5, mu={"ODI": 0.0, "RMDQ": 30.0}, sd={"ODI": 1.0, "RMDQ": 1.0}, draws=1000)
    cells = dec.decision_table(clear, MARGINS, LOWER, dec.DecisionRule()).set_index("outcome")
    assert cells.loc["ODI", "decision"] == "equivalent"
    assert cells.loc["RMDQ", "decision"] == "not equivalent"
    # constant indicators: share exactly 0 / 1, no MCSE to estimate (NaN), shown as a bound
    assert cells.loc["RMDQ", "prob_equivalence"] == 0.0 and np.isnan(cells.loc["RMDQ", "mcse_prob_equivalence"])
    assert cells.loc["ODI", "prob_equivalence"] == 1.0 and np.isnan(cells.loc["ODI", "mcse_prob_equivalence"])
    assert dec.probability_text(1.0, np.nan, 4000) == "> 0.999"
    assert dec.probability_text(0.0, np.nan, 4000) == "< 0.001"
    assert dec.probability_text(1.0, np.nan, 200) == "> 0.995"  # 200 draws cannot say more than 1 - 1/200
    assert dec.probability_text(0.9996, 0.0003, 4000) == "> 0.999"  # rounds to 1.000: a bound, not certainty
    assert dec.probability_text(5997 / 6000, 0.0003, 6000) == "> 0.999"  # 0.9995 also prints as 1.000
    assert dec.probability_text(2 / 6000, 0.0003, 6000) == "< 0.001"  # prints as 0.000
    assert dec.probability_text(0.97449, 0.003, 4000) == "0.974"
    # beside a decision threshold a value that would round onto it gets one more decimal
    assert dec.probability_text(0.97483, 0.0024, 6000, threshold=0.975) == "0.9748"
    assert dec.probability_text(0.97483, 0.0024, 6000) == "0.975"
    assert dec.probability_text(0.975, 0.0024, 6000, threshold=0.975) == "0.975"
    assert dec.probability_text(0.9752, 0.0024, 6000, threshold=0.975) == "0.9752"
    assert dec.probability_text(0.981, 0.0024, 6000, threshold=0.975) == "0.981"
    assert dec.probability_text(0.97483, 0.0024, 6000, threshold=float("nan")) == "0.975"  # a joint row
    assert cells.loc["ODI", "decision_rule"] == dec.DecisionRule().text
    assert (cells.decision_threshold == 0.975).all()


def test_custom_threshold_changes_the_decision(delta, table):
    # ODI ~ N(-2, 5), m = 10: P(|delta| < 10) = 0.937, undecided at 0.975, equivalent at 0.9
    odi = table[(table.scope == "cell") & (table.outcome == "ODI")].iloc[0]
    assert (
        abs(odi.prob_equivalence - _exact("ODI", "lower_is_better")["prob_equivalence"]) < Z * odi.mcse_prob_equivalence
    )
    assert odi.decision == "undecided"
    relaxed = dec.decision_table(delta, MARGINS, LOWER, dec.DecisionRule(0.9))
    odi9 = relaxed[(relaxed.scope == "cell") & (relaxed.outcome == "ODI")].iloc[0]
    assert odi9.decision == "equivalent" and odi9.decision_threshold == 0.9 and "0.9;" in odi9.decision_rule


# --- joint probabilities: hand-built draws ---------------------------------------------------


# 1 chain x 4 draws; cells (week 4 ODI, week 4 RMDQ, week 8 ODI, week 8 RMDQ); margins 10 and 2.5;
# lower is better (equivalent: |d| < m; non-inferior: d < m; superior: d < 0).
HAND = np.array(
    [
        [1.0, 1.0, 2.0, -1.0],  # draw 1: every cell within its margin; no cell superior at week 4
        [11.0, 0.0, -3.0, 2.0],  # draw 2: week-4 ODI 11 >= 10 (harm beyond margin)
        [-3.0, 3.0, -1.0, -2.0],  # draw 3: week-4 RMDQ 3 >= 2.5 (harm beyond margin)
        [-12.0, -4.0, -5.0, -1.0],  # draw 4: week-4 both beyond the margin on the benefit side
    ]
).reshape(1, 4, 2, 2)


@pytest.fixture(scope="module")
def hand_table():
    hand = draws_by_cell(HAND, [4.0, 8.0], ["ODI", "RMDQ"])
    return dec.decision_table(hand, MARGINS, LOWER, dec.DecisionRule())


def test_joint_probabilities_on_hand_built_draws(hand_table):
    t = hand_table
    assert list(t.scope) == ["cell"] * 4 + ["joint_time"] * 2 + ["joint_all", "any_beyond_margin"]
    cell = t[t.scope == "cell"].set_index(["time", "outcome"])
    # counted by hand from HAND
    assert cell.loc[(4.0, "ODI"), "prob_equivalence"] == 2 / 4  # draws 1, 3
    assert cell.loc[(4.0, "ODI"), "prob_noninferiority"] == 3 / 4  # draws 1, 3, 4
    assert cell.loc[(4.0, "ODI"), "prob_superiority"] == 2 / 4  # draws 3, 4
    assert cell.loc[(4.0, "ODI"), "prob_harm_beyond_margin"] == 1 / 4  # draw 2
    assert cell.loc[(4.0, "RMDQ"), "prob_superiority"] == 1 / 4  # draw 4 (0 is not < 0)
    assert cell.loc[(8.0, "RMDQ"), "prob_equivalence"] == 1.0  # |2| < 2.5
    jt = t[t.scope == "joint_time"].set_index("time")
    assert (jt.outcome == "all").all() and jt.margin.isna().all()
    assert jt.loc[4.0, "prob_equivalence"] == 1 / 4  # draw 1 only
    assert jt.loc[4.0, "prob_noninferiority"] == 2 / 4  # draws 1, 4
    assert jt.loc[4.0, "prob_superiority"] == 1 / 4  # draw 4
    assert jt.loc[4.0, "prob_not_equivalent"] == 3 / 4
    assert jt.loc[4.0, "prob_harm_beyond_margin"] == 2 / 4  # draws 2, 3: some outcome harmed
    assert jt.loc[8.0, "prob_equivalence"] == 1.0 and np.isnan(jt.loc[8.0, "mcse_prob_equivalence"])  # constant
    assert jt.loc[8.0, "decision"] == "equivalent"
    assert jt.loc[8.0, "prob_superiority"] == 2 / 4  # draws 3, 4
    ja = t[t.scope == "joint_all"].iloc[0]
    assert np.isnan(ja.time) and ja.outcome == "all"
    assert ja.prob_equivalence == 1 / 4  # draw 1
    assert ja.prob_noninferiority == 2 / 4  # draws 1, 4
    assert ja.prob_superiority == 1 / 4  # draw 4
    assert ja.decision == "undecided"  # P(all inside) = 0.25, P(some cell outside) = 0.75: neither >= 0.975
    anyb = t[t.scope == "any_beyond_margin"].iloc[0]
    assert np.isnan(anyb.time) and anyb.outcome == "all" and anyb.decision == ""
    assert anyb.prob_not_equivalent == 3 / 4  # draws 2, 3, 4
    assert np.isnan(anyb.prob_noninferiority) and np.isnan(anyb.prob_superiority)
    # its own event only: no P(equiv) column copying the all-cells row (which the readers would show as P(equiv))
    assert np.isnan(anyb.prob_equivalence) and np.isnan(anyb.mcse_prob_equivalence)


def test_joint_rows_match_their_definition_on_random_draws(delta, table):
    # joint equivalence = mean over draws of all(|delta[t, o]| < m[o])
    m = xr.DataArray([MARGINS[o] for o in MU], dims="outcome", coords={"outcome": list(MU)})
    expected = float((abs(delta) < m).all(("time", "outcome")).mean())
    ja = table[table.scope == "joint_all"].iloc[0]
    assert ja.prob_equivalence == pytest.approx(expected, abs=1e-12)
    noninf = float((delta < m).all(("time", "outcome")).mean())
    assert ja.prob_noninferiority == pytest.approx(noninf, abs=1e-12)
    # independent cells: the joint probability is the product of the marginal closed forms (4 MCSE)
    exact = np.prod([_exact(o, "lower_is_better")["prob_equivalence"] for o in MU])
    assert abs(ja.prob_equivalence - exact) < Z * ja.mcse_prob_equivalence
    anyb = table[table.scope == "any_beyond_margin"].iloc[0]
    assert anyb.prob_not_equivalent == pytest.approx(1 - expected, abs=1e-12)


def test_cells_without_evidence_stay_out_of_joint_rows(delta):
    """A cell without evidence keeps its row (decision "no evidence") but no joint row counts it; a
    time point with no evidence at all has no joint row."""
    times = [float(t) for t in delta.time.values]
    evidence = xr.DataArray(
        np.ones((len(times), len(MU)), bool), dims=("time", "outcome"), coords={"time": times, "outcome": list(MU)}
    )
    evidence.loc[{"time": times[0], "outcome": "RMDQ"}] = False
    t = dec.decision_table(delta, MARGINS, LOWER, dec.DecisionRule(), prior_delta_natural=delta, evidence=evidence)
    cell = t[t.scope == "cell"].set_index(["time", "outcome"])
    assert cell.loc[(times[0], "RMDQ"), "decision"] == "no evidence"
    assert cell.loc[(times[0], "ODI"), "decision"] != "no evidence"
    m = xr.DataArray([MARGINS[o] for o in MU], dims="outcome", coords={"outcome": list(MU)})
    inside = (abs(delta) < m).where(evidence, True)
    ja = t[t.scope == "joint_all"].iloc[0]
    assert ja.prob_equivalence == pytest.approx(float(inside.all(("time", "outcome")).mean()), abs=1e-12)
    assert ja.prob_equivalence_prior == pytest.approx(ja.prob_equivalence, abs=1e-12)  # same draws, same mask
    jt = t[t.scope == "joint_time"].set_index("time")
    assert jt.loc[times[0], "prob_equivalence"] == pytest.approx(float(inside.isel(time=0).all("outcome").mean()))
    beyond = ((abs(delta) >= m) & evidence).any(("time", "outcome"))
    anyb = t[t.scope == "any_beyond_margin"].iloc[0]
    assert anyb.prob_not_equivalent == pytest.approx(float(beyond.mean()), abs=1e-12)
    assert anyb.prob_not_equivalent == pytest.approx(1 - ja.prob_equivalence, abs=1e-12)
    assert anyb.prob_not_equivalent_prior == pytest.approx(1 - ja.prob_equivalence_prior, abs=1e-12)
    assert np.isnan(anyb.prob_equivalence) and np.isnan(anyb.prob_equivalence_prior)
    # no evidence at the first time point: its joint row goes
    evidence.loc[{"time": times[0]}] = False
    t = dec.decision_table(delta, MARGINS, LOWER, dec.DecisionRule(), evidence=evidence)
    assert list(t[t.scope == "joint_time"].time) == times[1:]


def test_prior_columns(delta, table):
    assert not any(c.endswith("_prior") for c in table.columns)
    # a single-chain prior, outcomes in the other order: aligned by coordinate
    prior = normal_draws(seed=2, mu={"RMDQ": 0.0, "ODI": 0.0}, sd={"RMDQ": 10.0, "ODI": 20.0}, chains=1)
    with_prior = dec.decision_table(delta, MARGINS, LOWER, dec.DecisionRule(), prior_delta_natural=prior)
    for name in dec.EVENTS:
        assert f"{name}_prior" in with_prior.columns and f"mcse_{name}_prior" in with_prior.columns
    cells = with_prior[with_prior.scope == "cell"].set_index("outcome")
    for o, prior_sd in (("ODI", 20.0), ("RMDQ", 10.0)):
        exact = stats.norm(0, prior_sd).cdf(MARGINS[o]) - stats.norm(0, prior_sd).cdf(-MARGINS[o])
        p, mcse = cells.loc[o, "prob_equivalence_prior"], cells.loc[o, "mcse_prob_equivalence_prior"]
        assert abs(p - exact) < Z * mcse  # 4 MCSE
        assert mcse == pytest.approx(np.sqrt(exact * (1 - exact) / DRAWS), rel=0.2)
    # posterior columns do not change when a prior is added
    np.testing.assert_array_equal(with_prior["prob_equivalence"], table["prob_equivalence"])
    assert with_prior[with_prior.scope == "joint_all"]["prob_equivalence_prior"].notna().all()
    with pytest.raises(ValueError, match="lacks"):
        dec.decision_table(delta, MARGINS, LOWER, dec.DecisionRule(), prior_delta_natural=prior.sel(outcome=["ODI"]))


def test_bad_inputs_are_refused(delta):
    with pytest.raises(ValueError, match="margin"):
        dec.decision_table(delta, {"ODI": 10.0}, LOWER, dec.DecisionRule())
    with pytest.raises(ValueError, match="positive"):
        dec.decision_table(delta, {"ODI": 10.0, "RMDQ": -1.0}, LOWER, dec.DecisionRule())
    with pytest.raises(ValueError, match="direction"):
        dec.decision_table(delta, MARGINS, {"ODI": "lower", "RMDQ": "lower_is_better"}, dec.DecisionRule())
    with pytest.raises(ValueError, match="dims"):
        dec.decision_table(delta.isel(time=0), MARGINS, LOWER, dec.DecisionRule())
