"""Model structure and the noncentral-t event probabilities (fast: no sampling)."""

from __future__ import annotations

import copy

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats

from bayes_stenosis.errors import InputError
from bayes_stenosis.model import (
    build_model,
    chi_nodes,
    data_values,
    log_prob_event,
    prepare_inputs,
    resolve_prior,
)
from bayes_stenosis.spec import load_spec
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import spec_variant, write_study


@pytest.fixture(scope="module")
def flagship():
    study = load_study("farpour2022")
    spec, _ = load_spec("default")
    inputs = prepare_inputs(study, spec)
    return study, spec, inputs


def test_flagship_model_has_named_dims_and_finite_gradient(flagship):
    study, spec, inputs = flagship
    model = build_model(inputs, spec, resolve_prior(spec, "weakly_informative", inputs))
    assert model.coords["arm"] == ("caudal_esi", "mesotherapy")
    assert model.coords["time"] == (4.0, 8.0)
    assert model.coords["outcome"] == ("VAS", "ODI", "QBPDS", "RMDQ")
    assert model.named_vars_to_dims["delta"] == ("time", "outcome")
    assert model.named_vars_to_dims["delta_natural"] == ("time", "outcome")
    assert model.named_vars_to_dims["change"] == ("arm", "time", "outcome")
    assert len(model.coords["threshold_row"]) == 24
    point = model.initial_point()
    assert np.isfinite(model.compile_logp()(point))
    assert np.all(np.isfinite(model.compile_dlogp()(point)))


def test_build_model_leaves_inputs_unchanged(flagship):
    study, spec, inputs = flagship
    before_thr = study.evidence["threshold"].copy()
    before_inputs = copy.deepcopy(inputs.__dict__)
    build_model(inputs, spec, resolve_prior(spec, "small_difference", inputs))
    assert study.evidence["threshold"].equals(before_thr)
    for key, value in before_inputs.items():
        now = inputs.__dict__[key]
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(now, value)
        elif hasattr(value, "equals"):
            assert now.equals(value), key


def test_flagship_assumptions(flagship):
    _, _, inputs = flagship
    # per-arm n unknown: the randomised total 39 is split equally
    assert inputs.arm_sizes == {"mesotherapy": 19.5, "caudal_esi": 19.5}
    np.testing.assert_allclose(inputs.margin_std, [15 / 20, 10 / 16, 15 / 20, 5 / 5])
    assert set(inputs.evidence_by_cell.evidence) == {"threshold"}


def test_prior_sets_resolve_from_the_smallest_margin(flagship):
    _, spec, inputs = flagship
    m = 10 / 16  # ODI has the smallest standardized margin
    small = resolve_prior(spec, "small_difference", inputs)
    assert small.mu == 0 and small.sigma == pytest.approx(m / stats.norm.ppf(0.975))
    # 5 % prior mass beyond the margin, by construction
    assert 2 * stats.norm.sf(m, 0, small.sigma) == pytest.approx(0.05)
    # sceptical of equivalence: half the prior mass beyond the margin, P(|Delta| < m) = 0.5
    neutral = resolve_prior(spec, "sceptical_of_equivalence", inputs)
    assert neutral.mu == 0 and 2 * stats.norm.sf(m, 0, neutral.sigma) == pytest.approx(0.5)
    with pytest.raises(InputError, match="renamed 'small_difference'"):
        resolve_prior(spec, "sceptical", inputs)
    enthusiastic = resolve_prior(spec, "enthusiastic", inputs)
    assert enthusiastic.mu == pytest.approx(-m)  # favours the new arm: lower is better
    assert stats.norm.sf(0, enthusiastic.mu, enthusiastic.sigma) == pytest.approx(0.05)
    with pytest.raises(InputError, match="unknown prior set"):
        resolve_prior(spec, "nonsense", inputs)


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


def test_missing_reference_sd_names_the_outcome_and_key(tmp_path):
    folder = write_study(
        tmp_path / "s",
        outcomes={"ODI": {"instrument": "ODI", "margin": 10, "reference_sd": None}},
        rows={
            "thresholds.csv": [
                {
                    "outcome": "ODI",
                    "time": 4,
                    "comparison": "between",
                    "relation": ">",
                    "alpha": 0.05,
                    "test": "two_sample_t",
                }
            ]
        },
    )
    spec, _ = load_spec()
    with pytest.raises(InputError) as err:
        prepare_inputs(load_study(folder), spec)
    message = str(err.value)
    assert "study.toml" in message and "outcomes.ODI.reference_sd" in message and "ODI" in message


def test_same_design_gives_same_data_names_for_compiled_reuse(tmp_path):
    def contrast_study(name, estimate):
        return write_study(
            tmp_path / name,
            rows={
                "contrasts.csv": [
                    {
                        "outcome": "ODI",
                        "time": 4,
                        "measure": "change",
                        "direction": "new_minus_reference",
                        "estimate": estimate,
                        "se": 3,
                    }
                ]
            },
        )

    spec = spec_variant()
    values = []
    for name, est in (("a", -2.0), ("b", 1.5)):
        inputs = prepare_inputs(load_study(contrast_study(name, est)), spec)
        values.append(data_values(build_model(inputs, spec, resolve_prior(spec, "vague", inputs))))
    assert values[0].keys() == values[1].keys()
    assert values[0]["contrast_estimate"][0] == -2.0 and values[1]["contrast_estimate"][0] == 1.5
