"""``decisions.curves``: margin curves on synthetic posteriors with known answers.

Draws come from known normals (independent draws, seeded), so every probability, quantile and
moment has a closed form. Tolerances are stated in Monte Carlo standard errors (MCSE): an estimate
must lie within 4 MCSE of its closed form, where the MCSE is the one the code itself reports
(and, for independent draws, that MCSE is checked against the binomial/normal-theory value).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayes_stenosis import decisions as dec
from tests.decisions.known_normals import LOWER, MARGINS, MU, SD, Z


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
