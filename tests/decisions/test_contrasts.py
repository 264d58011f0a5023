"""``decisions.contrasts``: contrast summaries (means, equal-tailed and highest-density intervals, their
MCSEs) on synthetic posteriors with known answers.

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
from tests.decisions.known_normals import HIGHER, LOWER, MU, SCALE, SD, N, Z, draws_by_cell, standardised


def test_contrast_summary_matches_normal_quantiles(delta):
    summary = dec.summarise_contrasts(delta, standardised(delta), dec.IntervalSpec(), LOWER, ("Clinic", "Usual care"))
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
    flipped = dec.summarise_contrasts(delta, standardised(delta), dec.IntervalSpec(), HIGHER, ("Clinic", "Usual care"))
    assert (flipped.favours_if_negative == "Usual care").all()


def test_hdi_summary(delta):
    hdi = dec.summarise_contrasts(delta, standardised(delta), dec.IntervalSpec("hdi", 0.9), LOWER, ("new", "ref"))
    row = hdi.set_index("outcome").loc["ODI"]
    assert row.interval_kind == "hdi" and row.interval_label == "90% highest-density interval"
    # symmetric posterior: HDI = ETI = mu -+ 1.645 sd. The reported HDI MCSE is an approximation that
    # ignores the search for the shortest interval (the true Monte Carlo SD is ~1.5x it for normal
    # draws), so the tolerance is 6 reported MCSE, i.e. ~4 true MCSE.
    assert abs(row.lower_natural - stats.norm.ppf(0.05, -2, 5)) < 6 * row.mcse_lower_natural
    assert abs(row.upper_natural - stats.norm.ppf(0.95, -2, 5)) < 6 * row.mcse_upper_natural
    # skewed posterior: the HDI is shorter than the ETI and shifted towards the mode
    rng = np.random.default_rng(7)
    skewed = draws_by_cell(rng.gamma(2.0, 3.0, size=(2, 2000, 1, 1)), [4.0], ["ODI"])
    eti = dec.summarise_contrasts(skewed, skewed, dec.IntervalSpec("eti", 0.9), LOWER, ("n", "r")).iloc[0]
    hd = dec.summarise_contrasts(skewed, skewed, dec.IntervalSpec("hdi", 0.9), LOWER, ("n", "r")).iloc[0]
    assert hd.upper_natural - hd.lower_natural < eti.upper_natural - eti.lower_natural
    assert hd.lower_natural < eti.lower_natural and np.isfinite(hd.mcse_lower_natural)
