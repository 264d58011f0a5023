"""``model.terms.threshold``: the test assumed behind a between-arm statement and the SD ratios."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import special, stats

from bayes_stenosis.model import (
    EVENT_KIND_CODES,
    build_model,
    chi_nodes,
    data_values,
    log_prob_event,
    log_prob_event_coded,
    prepare_inputs,
    resolve_prior,
)
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import spec_variant, statement_row, study_model, write_simulated_study, write_study
from tests.model.posterior_checks import check_against_grid, sample_posterior


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    row = {"outcome": "ODI", "time": 4, "comparison": "between", "relation": ">", "alpha": 0.05, "test": "two_sample_t"}
    return write_study(tmp_path_factory.mktemp("thr") / "s", n_per_arm=(20, 30), rows={"thresholds.csv": [row]})


@pytest.mark.parametrize("test", ["change", "follow_up", "ancova"])
def test_noncentrality_uses_the_sd_of_the_test_assumed(folder, test):
    """lambda = delta / (sigma x sqrt(1/n1 + 1/n2)) with sigma, in reference-SD units, the change SD
    q sqrt(1 + r^2 - 2 rho r), the follow-up SD q r, or the ANCOVA residual SD q r sqrt(1 - rho^2);
    checked on forward draws of every ingredient (exact up to float rounding)."""
    spec = spec_variant(thresholds={"between_test": test, "analysed_fraction": 0.8})
    inputs = prepare_inputs(load_study(folder), spec)
    model = build_model(inputs, spec, resolve_prior(spec, "weakly_informative", inputs))
    names = ["threshold_noncentrality", "delta", "rho", "followup_sd_ratio", "trial_sd_ratio", "change_sd_ratio"]
    lam, delta, rho, r, q, change_sd = pm.draw([model[n] for n in names], draws=50, random_seed=1)
    rho, r, q = rho[:, 0], r[:, 0], q[:, 0]
    sigma = {
        "change": q * np.sqrt(1 + r**2 - 2 * rho * r),
        "follow_up": q * r,
        "ancova": q * r * np.sqrt(1 - rho**2),
    }[test]
    np.testing.assert_allclose(change_sd[:, 0], q * np.sqrt(1 + r**2 - 2 * rho * r), rtol=1e-12)
    se = np.sqrt(1 / (0.8 * 20) + 1 / (0.8 * 30))  # the share analysed scales both arms' n
    np.testing.assert_allclose(lam[:, 0], delta[:, 0, 0] / (sigma * se), rtol=1e-10)
    assert np.ptp(r) > 0  # the follow-up / baseline SD ratio has a prior, not a fixed 1


def _event_fn(kind):
    lam, crit = pt.dvector("lam"), pt.dvector("crit")
    nodes, log_w = pt.dmatrix("nodes"), pt.dmatrix("log_w")
    return pytensor.function([lam, crit, nodes, log_w], log_prob_event(kind, lam, crit, nodes, log_w))


@pytest.mark.parametrize("df", [4.0, 18.5, 37.0, 150.0, np.inf])
def test_event_probabilities_match_scipy_noncentral_t(df):
    lam = np.linspace(-7, 7, 57)
    crit = np.full_like(lam, stats.t.ppf(0.975, df) if np.isfinite(df) else stats.norm.ppf(0.975))
    nodes, log_w = chi_nodes(df, 32)
    nodes, log_w = np.tile(nodes, (len(lam), 1)), np.tile(log_w, (len(lam), 1))
    dist = stats.norm(lam) if not np.isfinite(df) else stats.nct(df, lam)
    c = crit[0]
    expected = {
        "inside": dist.cdf(c) - dist.cdf(-c),
        "below": dist.cdf(-c),
        "above": dist.sf(c),
    }
    for kind, exact in expected.items():
        got = _event_fn(kind)(lam, crit, nodes, log_w)
        # scipy's nct.cdf loses relative accuracy below ~1e-8 (see the adaptive-integration test),
        # so compare there only; elsewhere the quadrature agrees to 1e-7 relative
        keep = exact > 1e-8
        np.testing.assert_allclose(np.exp(got)[keep], exact[keep], rtol=1e-7, err_msg=kind)


def test_event_probabilities_far_tail_match_adaptive_integration():
    from scipy import integrate

    df = 37.0
    c = stats.t.ppf(0.975, df)
    lam = np.array([2.0, 5.0, 7.0])
    nodes, log_w = chi_nodes(df, 32)
    got = _event_fn("below")(lam, np.full(3, c), np.tile(nodes, (3, 1)), np.tile(log_w, (3, 1)))
    for value, lam_i in zip(got, lam, strict=True):
        exact = integrate.quad(
            lambda v, lam_i=lam_i: stats.norm.cdf(-c * np.sqrt(v / df) - lam_i) * stats.chi2.pdf(v, df),
            0,
            np.inf,
            epsabs=0,
            epsrel=1e-12,
            limit=500,
        )[0]
        # P as small as 7e-19; the quadrature is exact to ~1e-12 relative
        assert np.exp(value) == pytest.approx(exact, rel=1e-9)


def test_event_log_probability_does_not_underflow():
    # a huge effect: P(|T| < c) is ~1e-300 or smaller; the log must stay finite and decreasing
    lam = np.array([20.0, 30.0, 40.0, -40.0])
    crit = np.full(4, 2.026)
    nodes, log_w = chi_nodes(37.0, 32)
    got = _event_fn("inside")(lam, crit, np.tile(nodes, (4, 1)), np.tile(log_w, (4, 1)))
    assert np.all(np.isfinite(got))
    assert got[0] > got[1] > got[2]
    assert got[3] == pytest.approx(got[2])


@pytest.mark.parametrize("df", [18.5, np.inf])
def test_coded_event_kinds_equal_the_static_ones(df):
    lam_v, crit_v = pt.dvector("lam"), pt.dvector("crit")
    nodes_m, log_w_m, code_v = pt.dmatrix("nodes"), pt.dmatrix("log_w"), pt.lvector("code")
    coded = pytensor.function(
        [code_v, lam_v, crit_v, nodes_m, log_w_m], log_prob_event_coded(code_v, lam_v, crit_v, nodes_m, log_w_m)
    )
    lam = np.linspace(-40, 40, 81)  # includes events of probability far below 1e-300
    crit = np.full_like(lam, stats.t.ppf(0.975, df) if np.isfinite(df) else stats.norm.ppf(0.975))
    nodes, log_w = chi_nodes(df, 32)
    nodes, log_w = np.tile(nodes, (len(lam), 1)), np.tile(log_w, (len(lam), 1))
    for kind, code in EVENT_KIND_CODES.items():
        static = pytensor.function(
            [lam_v, crit_v, nodes_m, log_w_m], log_prob_event(kind, lam_v, crit_v, nodes_m, log_w_m)
        )(lam, crit, nodes, log_w)
        got = coded(np.full(len(lam), code), lam, crit, nodes, log_w)
        assert np.all(np.isfinite(got)), kind
        # log-probabilities agree to 1e-8 absolute (the coded form reaches P near 1 through log1mexp);
        # both match scipy to 1e-7 relative (test_event_probabilities_match_scipy_noncentral_t)
        np.testing.assert_allclose(got, static, rtol=1e-10, atol=1e-8, err_msg=kind)


def test_threshold_kinds_as_data_give_one_design_and_the_same_log_density(tmp_path):
    spec = spec_variant(thresholds={"kinds_as_data": True})
    static_spec = spec_variant()
    # a null and a large effect: different statements are P<0.05 in the two trials
    folders = [
        write_simulated_study(tmp_path, "threshold", 1),
        write_simulated_study(tmp_path, "threshold", 2, delta=-12.0),
    ]
    kinds = [load_study(f).evidence["threshold"]["relation"].tolist() for f in folders]
    assert kinds[0] != kinds[1]
    models = [study_model(f, spec)[0] for f in folders]
    values = [data_values(m) for m in models]
    assert values[0].keys() == values[1].keys()
    assert all(values[0][k].shape == values[1][k].shape for k in values[0])
    assert not np.array_equal(values[0]["threshold_kind"], values[1]["threshold_kind"])
    for folder, model in zip(folders, models, strict=True):
        static, _ = study_model(folder, static_spec)
        point = static.initial_point()
        rng = np.random.default_rng(0)
        point = {k: v + 0.3 * rng.standard_normal(np.shape(v)) for k, v in point.items()}
        np.testing.assert_allclose(model.compile_logp()(point), static.compile_logp()(point), rtol=1e-10)
        np.testing.assert_allclose(model.compile_dlogp()(point), static.compile_dlogp()(point), rtol=1e-8)


# ---------------------------------------------------------------------------------------------
# Slow: each samples a model. Tolerances are in Monte Carlo standard errors (MCSE from ArviZ, same draws)
# ---------------------------------------------------------------------------------------------


# follow-up SD = baseline SD (the closed forms below use the change SD sqrt(2 (1 - rho)))
EQUAL_SDS = {"followup_sd_ratio_median": 1.0, "followup_sd_ratio_log_sd": 0.0}


@pytest.mark.slow
@pytest.mark.parametrize(
    "relation, direction",
    [(">", ""), ("<", "favours_new")],
    ids=["P>0.05", "P<0.05 favouring new"],
)
def test_threshold_posterior_matches_brute_force_integration(tmp_path, relation, direction):
    n1 = n2 = 20
    rho = 0.5
    folder = write_study(
        tmp_path / "s",
        n_per_arm=(n1, n2),
        rows={
            "thresholds.csv": [
                {
                    "outcome": "ODI",
                    "time": 4,
                    "comparison": "between",
                    "relation": relation,
                    "alpha": 0.05,
                    "direction": direction,
                    "test": "two_sample_t",
                }
            ]
        },
    )
    # fixed correlation and trial SD = reference SD: the posterior of delta is one-dimensional
    spec = spec_variant(
        correlation={"fixed_baseline_followup": rho}, scale={"trial_sd_log_ratio_sigma": 0.0, **EQUAL_SDS}
    )
    idata, inputs, prior = sample_posterior(folder, spec, "weakly_informative")
    delta = idata.posterior["delta"].sel(time=4.0, outcome="ODI")

    grid = np.linspace(-4, 4, 4001)
    prior_density = stats.t.pdf(grid, prior.nu, prior.mu, prior.sigma)
    df = n1 + n2 - 2
    crit = stats.t.ppf(0.975, df)
    lam = grid / (np.sqrt(2 * (1 - rho)) * np.sqrt(1 / n1 + 1 / n2))
    # P(event | lambda) by brute force: T = (Z + lambda) / sqrt(V / df), V ~ chi2(df), integrated
    # with the trapezoid rule on a dense grid of V (independent of the model's quadrature)
    v = np.linspace(1e-6, 200, 6001)
    weight = stats.chi2.pdf(v, df) * np.gradient(v)
    s = np.sqrt(v / df)[None, :]
    if relation == ">":
        inside = special.ndtr(crit * s - lam[:, None]) - special.ndtr(-crit * s - lam[:, None])
    else:  # lower is better: the new arm is better when T < -crit
        inside = special.ndtr(-crit * s - lam[:, None])
    likelihood = inside @ weight
    check_against_grid(delta.to_dataset(name="x"), grid, prior_density * likelihood)
    if relation == "<":
        assert float((delta < 0).mean()) > 0.9  # moved away from 0, towards the new arm


def _between_only(tmp_path, name, n_per_arm=(20, 20), n_total=None):
    return write_study(
        tmp_path / name,
        n_per_arm=n_per_arm,
        n_total=n_total,
        rows={"thresholds.csv": [statement_row()]},
    )


@pytest.mark.slow
def test_larger_trial_reporting_p_above_alpha_gives_a_narrower_posterior(tmp_path):
    spec = spec_variant(
        correlation={"fixed_baseline_followup": 0.5}, scale={"trial_sd_log_ratio_sigma": 0.0, **EQUAL_SDS}
    )
    widths = []
    for n in (20, 200):
        idata, _, _ = sample_posterior(_between_only(tmp_path, f"n{n}", (n, n)), spec, "weakly_informative")
        x = np.abs(idata.posterior["delta_natural"].sel(time=4.0, outcome="ODI").values.ravel())
        widths.append(np.quantile(x, 0.9))
    # the 90th percentile of |delta| shrinks by far more than its Monte Carlo error (~1-2 %)
    assert widths[1] < 0.6 * widths[0], widths


@pytest.mark.slow
def test_unknown_split_of_the_total_matters_little(tmp_path):
    """Equal split (19.5/19.5 of 39) vs the extreme splits 15/24 and 24/15."""
    spec = spec_variant(
        correlation={"fixed_baseline_followup": 0.5}, scale={"trial_sd_log_ratio_sigma": 0.0, **EQUAL_SDS}
    )
    q90 = {}
    for label, sizes, total in (("equal", (None, None), 39), ("15/24", (15, 24), None), ("24/15", (24, 15), None)):
        idata, _, _ = sample_posterior(
            _between_only(tmp_path, label.replace("/", "_"), sizes, total), spec, "weakly_informative"
        )
        x = np.abs(idata.posterior["delta_natural"].sel(time=4.0, outcome="ODI").values.ravel())
        q90[label] = np.quantile(x, 0.9)
    # SE factor sqrt(1/15 + 1/24) vs sqrt(4/39): 3 % wider; the posterior tail moves by well under 10 %
    for label in ("15/24", "24/15"):
        assert abs(q90[label] / q90["equal"] - 1) < 0.1, q90
