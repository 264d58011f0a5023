"""Decision quantities on synthetic posteriors with known answers.

Draws come from known normals (independent draws, seeded), so every probability, quantile and
moment has a closed form. Tolerances are stated in Monte Carlo standard errors (MCSE): an estimate
must lie within 4 MCSE of its closed form, where the MCSE is the one the code itself reports
(and, for independent draws, that MCSE is checked against the binomial/normal-theory value).
Joint probabilities are checked exactly on small hand-built draws that can be counted by hand.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayes_stenosis import decisions as dec

MU = {"ODI": -2.0, "RMDQ": 3.0}
SD = {"ODI": 5.0, "RMDQ": 2.0}
MARGINS = {"ODI": 10.0, "RMDQ": 2.5}
SCALE = {"ODI": 16.0, "RMDQ": 4.5}  # natural units per standardised unit
LOWER = {"ODI": "lower_is_better", "RMDQ": "lower_is_better"}
HIGHER = {"ODI": "higher_is_better", "RMDQ": "higher_is_better"}
CHAINS, DRAWS = 4, 5000
N = CHAINS * DRAWS
Z = 4.0  # tolerance in MCSE


def _cells(values: np.ndarray, times, outcomes) -> xr.DataArray:
    return xr.DataArray(
        values,
        dims=("chain", "draw", "time", "outcome"),
        coords={"time": [float(t) for t in times], "outcome": list(outcomes)},
    )


def _normal_draws(seed: int, mu=MU, sd=SD, chains=CHAINS, draws=DRAWS) -> xr.DataArray:
    """Independent N(mu[o], sd[o]) draws, one time (week 4), outcomes in ``mu``'s order."""
    rng = np.random.default_rng(seed)
    values = np.stack([rng.normal(mu[o], sd[o], size=(chains, draws, 1)) for o in mu], axis=-1)
    return _cells(values, [4.0], list(mu))


def _std(delta: xr.DataArray) -> xr.DataArray:
    scale = xr.DataArray(
        [SCALE[str(o)] for o in delta.outcome.values], dims="outcome", coords={"outcome": delta.outcome}
    )
    return delta / scale


@pytest.fixture(scope="module")
def delta() -> xr.DataArray:
    return _normal_draws(seed=1)


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


# --- conventions ---------------------------------------------------------------------------


def test_interval_spec_label_and_validation():
    assert dec.IntervalSpec().label == "95% equal-tailed interval"
    assert dec.IntervalSpec("hdi", 0.89).label == "89% highest-density interval"
    assert dec.IntervalSpec("eti", 0.975).label == "97.5% equal-tailed interval"
    with pytest.raises(ValueError, match="kind"):
        dec.IntervalSpec("central", 0.95)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prob"):
        dec.IntervalSpec("eti", 95)


def test_decision_rule_thresholds():
    rule = dec.DecisionRule()
    assert rule.threshold == 0.975
    assert rule.text == (
        '"equivalent" when P(|delta| < m) >= 0.975; "not equivalent" when P(|delta| >= m) >= 0.975; '
        'otherwise "undecided"'
    )
    assert rule.decide(0.99) == "equivalent"
    assert rule.decide(0.975) == "equivalent"  # boundary: >=
    assert rule.decide(0.974) == "undecided"
    assert rule.decide(0.5) == "undecided"
    assert rule.decide(0.026) == "undecided"
    assert rule.decide(0.025) == "not equivalent"  # P(|delta| >= m) = 0.975
    assert rule.decide(0.0) == "not equivalent"
    assert rule.decide(float("nan")) == "undecided"
    custom = dec.DecisionRule(0.9)
    assert "0.9;" in custom.text and "0.975" not in custom.text
    assert custom.decide(0.92) == "equivalent"
    assert custom.decide(0.9) == "equivalent"
    assert custom.decide(0.89) == "undecided"
    assert custom.decide(0.08) == "not equivalent"
    assert custom.decide(0.11) == "undecided"
    for bad in (0.5, 0.3, 1.2):
        with pytest.raises(ValueError, match="threshold"):
            dec.DecisionRule(bad)


# --- decision table: closed forms ----------------------------------------------------------


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
    summary = dec.summarise_contrasts(delta, _std(delta), dec.IntervalSpec(), LOWER, ("new", "ref"))
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
    clear = _normal_draws(seed=5, mu={"ODI": 0.0, "RMDQ": 30.0}, sd={"ODI": 1.0, "RMDQ": 1.0}, draws=1000)
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
    hand = _cells(HAND, [4.0, 8.0], ["ODI", "RMDQ"])
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
    # no evidence at the first time point: its joint row goes
    evidence.loc[{"time": times[0]}] = False
    t = dec.decision_table(delta, MARGINS, LOWER, dec.DecisionRule(), evidence=evidence)
    assert list(t[t.scope == "joint_time"].time) == times[1:]


def test_prior_columns(delta, table):
    assert not any(c.endswith("_prior") for c in table.columns)
    # a single-chain prior, outcomes in the other order: aligned by coordinate
    prior = _normal_draws(seed=2, mu={"RMDQ": 0.0, "ODI": 0.0}, sd={"RMDQ": 10.0, "ODI": 20.0}, chains=1)
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


# --- margin curves ---------------------------------------------------------------------------


def test_margin_curve_matches_closed_form_at_every_grid_point(delta):
    curves = dec.margin_curves(delta, MARGINS)  # 41 points, 0 .. 2 m
    assert list(curves.columns) == [
        "time",
        "outcome",
        "margin_multiple",
        "margin",
        "prob_equivalence",
        "mcse",
        "default_margin",
    ]
    for o in MU:
        c = curves[curves.outcome == o]
        assert len(c) == 41 and c.margin_multiple.iloc[0] == 0.0 and c.margin_multiple.iloc[-1] == 2.0
        assert c.default_margin.sum() == 1 and c.loc[c.default_margin, "margin_multiple"].item() == 1.0
        assert c.loc[c.default_margin, "margin"].item() == MARGINS[o]
        np.testing.assert_allclose(c.margin, c.margin_multiple * MARGINS[o])
        dist = stats.norm(MU[o], SD[o])
        exact = dist.cdf(c.margin) - dist.cdf(-c.margin)
        # every grid point within 4 MCSE; at multiple 0 the indicator is constant (p = 0, no MCSE)
        assert np.all(np.abs(c.prob_equivalence - exact) <= Z * c.mcse.fillna(0.0)), o
        assert c.prob_equivalence.iloc[0] == 0.0 and np.isnan(c.mcse.iloc[0])
        assert np.all(np.diff(c.prob_equivalence) >= 0)
    # the curve at the default margin equals the decision table's cell probability
    table = dec.decision_table(delta, MARGINS, LOWER, dec.DecisionRule())
    at_default = curves[curves.default_margin].set_index("outcome").prob_equivalence
    cells = table[table.scope == "cell"].set_index("outcome").prob_equivalence
    np.testing.assert_allclose(at_default.loc[list(MU)], cells.loc[list(MU)], atol=1e-12)


def test_margin_curve_grid_always_holds_one(delta):
    small = dec.margin_curves(delta, MARGINS, n_grid=4, max_multiple=2.0)  # 0, 2/3, 4/3, 2 (+ 1.0)
    odi = small[small.outcome == "ODI"]
    np.testing.assert_allclose(odi.margin_multiple, [0, 2 / 3, 1, 4 / 3, 2])
    assert odi.default_margin.tolist() == [False, False, True, False, False]
    with pytest.raises(ValueError, match="n_grid"):
        dec.margin_curves(delta, MARGINS, n_grid=1)


# --- contrast summaries ----------------------------------------------------------------------


def test_contrast_summary_matches_normal_quantiles(delta):
    summary = dec.summarise_contrasts(delta, _std(delta), dec.IntervalSpec(), LOWER, ("Clinic", "Usual care"))
    assert len(summary) == 2
    for col in (
        "mean_natural",
        "sd_natural",
        "median_natural",
        "lower_natural",
        "upper_natural",
        "mcse_mean_natural",
        "mcse_lower_natural",
        "mcse_upper_natural",
        "mean_std",
        "median_std",
        "lower_std",
        "upper_std",
        "ess_bulk",
        "r_hat",
        "interval_kind",
        "interval_prob",
        "favours_if_negative",
    ):
        assert col in summary.columns, col
    rows = summary.set_index("outcome")
    for o in MU:
        row, s = rows.loc[o], SCALE[o]
        for scale, mu, sd in (("natural", MU[o], SD[o]), ("std", MU[o] / s, SD[o] / s)):
            # interval endpoints and mean within 4 reported MCSE of the closed forms
            assert abs(row[f"lower_{scale}"] - stats.norm.ppf(0.025, mu, sd)) < Z * row[f"mcse_lower_{scale}"]
            assert abs(row[f"upper_{scale}"] - stats.norm.ppf(0.975, mu, sd)) < Z * row[f"mcse_upper_{scale}"]
            assert abs(row[f"mean_{scale}"] - mu) < Z * row[f"mcse_mean_{scale}"]
            # independent draws: MCSE of the mean is sd / sqrt(N), within 20 %
            assert row[f"mcse_mean_{scale}"] == pytest.approx(sd / np.sqrt(N), rel=0.2)
            assert row[f"sd_{scale}"] == pytest.approx(sd, rel=0.02)  # SE of an SD ~ sd / sqrt(2N) = 0.5 %
        assert abs(row.median_natural - MU[o]) < Z * row.mcse_median_natural
        # MCSE of the 2.5 % quantile of a normal: sqrt(p (1 - p) / N) / pdf(z_p) * sd, within 20 %
        q_se = np.sqrt(0.025 * 0.975 / N) / stats.norm.pdf(stats.norm.ppf(0.025)) * SD[o]
        assert row.mcse_lower_natural == pytest.approx(q_se, rel=0.2)
        assert row.ess_bulk == pytest.approx(N, rel=0.2) and row.r_hat < 1.01
        assert row.interval_kind == "eti" and row.interval_prob == 0.95
        assert row.interval_label == "95% equal-tailed interval"
        assert row.favours_if_negative == "Clinic" and row.direction == "lower_is_better"
    flipped = dec.summarise_contrasts(delta, _std(delta), dec.IntervalSpec(), HIGHER, ("Clinic", "Usual care"))
    assert (flipped.favours_if_negative == "Usual care").all()


def test_hdi_summary(delta):
    hdi = dec.summarise_contrasts(delta, _std(delta), dec.IntervalSpec("hdi", 0.9), LOWER, ("new", "ref"))
    row = hdi.set_index("outcome").loc["ODI"]
    assert row.interval_kind == "hdi" and row.interval_label == "90% highest-density interval"
    # symmetric posterior: HDI = ETI = mu -+ 1.645 sd. The reported HDI MCSE is an approximation that
    # ignores the search for the shortest interval (the true Monte Carlo SD is ~1.5x it for normal
    # draws), so the tolerance is 6 reported MCSE, i.e. ~4 true MCSE.
    assert abs(row.lower_natural - stats.norm.ppf(0.05, -2, 5)) < 6 * row.mcse_lower_natural
    assert abs(row.upper_natural - stats.norm.ppf(0.95, -2, 5)) < 6 * row.mcse_upper_natural
    # skewed posterior: the HDI is shorter than the ETI and shifted towards the mode
    rng = np.random.default_rng(7)
    skewed = _cells(rng.gamma(2.0, 3.0, size=(2, 2000, 1, 1)), [4.0], ["ODI"])
    eti = dec.summarise_contrasts(skewed, skewed, dec.IntervalSpec("eti", 0.9), LOWER, ("n", "r")).iloc[0]
    hd = dec.summarise_contrasts(skewed, skewed, dec.IntervalSpec("hdi", 0.9), LOWER, ("n", "r")).iloc[0]
    assert hd.upper_natural - hd.lower_natural < eti.upper_natural - eti.lower_natural
    assert hd.lower_natural < eti.lower_natural and np.isfinite(hd.mcse_lower_natural)


# --- normal approximation --------------------------------------------------------------------


@pytest.fixture(scope="module")
def bivariate():
    """A known bivariate normal (correlation 0.6) in two cells, and its normal approximation."""
    rng = np.random.default_rng(3)
    sd = np.array([SD["ODI"], SD["RMDQ"]])
    cov = np.diag(sd) @ np.array([[1.0, 0.6], [0.6, 1.0]]) @ np.diag(sd)
    mean = np.array([MU["ODI"], MU["RMDQ"]])
    x = rng.multivariate_normal(mean, cov, size=(CHAINS, DRAWS))[:, :, None, :]
    delta = _cells(x, [4.0], ["ODI", "RMDQ"])
    approx = dec.normal_approximation(delta, _std(delta), MARGINS, {"ODI": "points", "RMDQ": "points"})
    return mean, cov, approx


def test_normal_approximation_recovers_a_bivariate_normal(bivariate):
    mean, cov, approx = bivariate
    assert approx["names"] == ["delta[time=4,outcome=ODI]", "delta[time=4,outcome=RMDQ]"]
    assert approx["cells"] == [{"time": 4.0, "outcome": "ODI"}, {"time": 4.0, "outcome": "RMDQ"}]
    assert approx["units"] == ["points", "points"] and approx["margins"] == [10.0, 2.5]
    assert approx["n_draws"] == N
    # means within 4 MCSE (independent draws: sd / sqrt(N))
    assert np.all(np.abs(np.array(approx["mean_natural"]) - mean) < Z * np.sqrt(np.diag(cov) / N))
    # covariances within 4 SE of a sample covariance, sqrt((s_ij^2 + s_ii s_jj) / N)
    got = np.array(approx["covariance_natural"])
    se_cov = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / N)
    assert np.all(np.abs(got - cov) < Z * se_cov)
    # correlation within 4 SE of a sample correlation, (1 - rho^2) / sqrt(N)
    r = got[0, 1] / np.sqrt(got[0, 0] * got[1, 1])
    assert abs(r - 0.6) < Z * (1 - 0.6**2) / np.sqrt(N)
    assert approx["correlation"][0][1] == pytest.approx(r, rel=1e-12) and approx["correlation"][0][0] == 1.0
    assert approx["approximates"] == "posterior"
    # the standardised scale is the same approximation divided by the scales
    s = np.array([SCALE["ODI"], SCALE["RMDQ"]])
    np.testing.assert_allclose(approx["mean_std"], np.array(approx["mean_natural"]) / s, rtol=1e-10)
    np.testing.assert_allclose(approx["covariance_std"], got / np.outer(s, s), rtol=1e-10)
    for fit in approx["marginal_fit"]:
        assert abs(fit["skewness"]) < Z * np.sqrt(6 / N)  # SE of sample skewness
        assert abs(fit["excess_kurtosis"]) < Z * np.sqrt(24 / N)  # SE of sample excess kurtosis
        assert fit["ks_distance"] < 1.63 / np.sqrt(N)  # 1 % KS critical value (conservative: fitted params)
        # SE of the 2.5 % quantile in SDs: sqrt(p (1 - p) / N) / pdf(z_p) = 0.019; 4 of those
        assert fit["max_quantile_error_sd"] < Z * 0.019


def test_normal_approximation_flags_a_skewed_marginal():
    rng = np.random.default_rng(8)
    x = _cells(rng.exponential(3.0, size=(2, 3000, 1, 1)), [4.0], ["ODI"])
    fit = dec.normal_approximation(x, x, MARGINS, {"ODI": "points"})["marginal_fit"][0]
    assert fit["skewness"] == pytest.approx(2.0, abs=0.3) and fit["ks_distance"] > 0.05
    assert fit["max_quantile_error_sd"] > 0.1


def test_validate_approximation_accepts_output_and_rejects_broken(bivariate):
    _, _, posterior = bivariate
    with pytest.raises(ValueError, match="missing required key"):  # the posterior alone does not say enough
        dec.validate_approximation(posterior)
    prior = dec.normal_prior("normal", 0.0, 1.0, 1, 2, pooled=False, tau_scale=0.0)
    approx = posterior | {
        "description": "POSTERIOR (includes the prior)",
        "direction": ["lower_is_better"] * 2,
        "time_unit": "weeks",
        "standardising_sds": [{"outcome": o, "sd": SCALE[o], "unit": "points", "source": "test"} for o in SCALE],
        "prior": {"set": "test"},
        "likelihood": dec.likelihood_block(posterior, prior, np.array([SCALE["ODI"], SCALE["RMDQ"]])),
    }
    dec.validate_approximation(approx)
    # JSON round trip with caller metadata
    text = json.dumps(approx | {"metadata": {"study": "x", "simulated": True}}, allow_nan=False)
    dec.validate_approximation(json.loads(text))
    broken = {
        "symmetric": approx | {"covariance_natural": [[25.0, 6.0], [5.0, 4.0]]},
        "semi-definite": approx | {"covariance_std": [[1.0, 2.0], [2.0, 1.0]]},
        "square": approx | {"covariance_natural": [[25.0, 6.0]]},
        "length": approx | {"units": ["points"]},
        "missing": {k: v for k, v in approx.items() if k != "names"},
        "unknown": approx | {"p_value": 0.03},
        "mean_natural": approx | {"mean_natural": [float("nan"), 1.0]},
        "metadata": approx | {"metadata": "not a dict"},
        "marginal_fit entry": approx | {"marginal_fit": [{"name": "x"}] * 2},
    }
    for message, obj in broken.items():
        with pytest.raises(ValueError, match=message):
            dec.validate_approximation(obj)
    with pytest.raises(ValueError, match="JSON object"):
        dec.validate_approximation([approx])  # type: ignore[arg-type]
