"""Outcome pooling of the treatment difference: partial (tau) or none, and the vague set's answer
equal to the normal likelihood's for several outcomes."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
from scipy import stats

import bayes_stenosis as bs
from bayes_stenosis.model import build_model, prepare_inputs, resolve_prior
from bayes_stenosis.testing import spec_variant, write_study

OUTCOMES = {
    "ODI": {"instrument": "ODI", "scale_max": 100, "margin": 10, "reference_sd": 16},
    "RMDQ": {"instrument": "RMDQ", "scale_max": 24, "margin": 5, "reference_sd": 5},
}
#: published-style contrasts (new minus reference change): estimates differ in sign across outcomes,
#: which partial pooling would pull toward each other
CONTRASTS = {(4.0, "ODI"): (6.0, 3.0), (8.0, "ODI"): (-4.0, 3.5), (4.0, "RMDQ"): (-2.0, 1.5), (8.0, "RMDQ"): (2.5, 1.8)}


def _study(tmp_path):
    rows = [
        {"outcome": o, "time": t, "measure": "change", "direction": "new_minus_reference", "estimate": e, "se": se}
        for (t, o), (e, se) in CONTRASTS.items()
    ]
    return write_study(tmp_path / "s", outcomes=OUTCOMES, follow_up=(4.0, 8.0), rows={"contrasts.csv": rows})


def _model(folder, spec, prior_set):
    inputs = prepare_inputs(bs.load_study(folder), spec)
    return build_model(inputs, spec, resolve_prior(spec, prior_set, inputs))


def test_pooling_is_a_choice_of_the_spec_and_the_prior_set(tmp_path):
    folder = _study(tmp_path)
    spec = spec_variant()
    pooled = _model(folder, spec, "weakly_informative")
    assert "tau" in pooled.named_vars and pooled.named_vars_to_dims["Delta"] == ("time",)
    assert "tau_scale" in pooled.named_vars  # a data container: a sweep over the scale reuses a compile
    # the vague set turns pooling off whatever the spec says
    vague = _model(folder, spec, "vague")
    assert "tau" not in vague.named_vars and vague.named_vars_to_dims["Delta"] == ("time", "outcome")
    # and the spec can turn it off for every set
    unpooled = _model(folder, spec_variant(hierarchy={"outcome_pooling": "none"}), "weakly_informative")
    assert "tau" not in unpooled.named_vars
    assert "no pooling" in resolve_prior(spec, "vague", prepare_inputs(bs.load_study(folder), spec)).text()


@pytest.mark.slow
def test_vague_prior_gives_the_normal_likelihood_answer_for_two_outcomes(tmp_path):
    """Contrasts only, --prior vague: per cell the posterior is the conjugate normal answer (prior
    N(0, (10 SD)^2) x likelihood N(estimate, SE^2)); the between-cell error correlation does not move a
    cell's marginal under priors this flat. Mean, SD and P(|delta| < m) within 3 MCSE each (12 checks:
    about one fixed seed in 30 fails by chance; seed 12 did, one SD at 3.2 MCSE, while seeds 13-18 and a
    24,000-draw run agreed within 2 MCSE, SD ratios 0.98-1.01)."""
    fit = bs.fit_study(_study(tmp_path), prior_set="vague", seed=15, chains=4, draws=2500, tune=1000)
    assert fit.verdict.status != "fail", fit.verdict.line()
    delta = fit.idata.posterior["delta_natural"]
    draws = delta.to_dataset(name="d")
    mcse_mean = az.mcse(draws, method="mean")["d"]
    # MCSE of the SD by the delta method, from the MCSE of the mean squared deviation (what
    # az.mcse(method="sd") does; arviz 0.23's version fails on arrays with extra dims under numpy 2)
    squared = ((delta - delta.mean(("chain", "draw"))) ** 2).to_dataset(name="d")
    mcse_sd = az.mcse(squared, method="mean")["d"] / (2 * delta.std(("chain", "draw")))
    cells = fit.decisions[fit.decisions["scope"] == "cell"].set_index(["time", "outcome"])
    for (t, o), (estimate, se) in CONTRASTS.items():
        prior_sd = 10.0 * OUTCOMES[o]["reference_sd"]
        var = 1.0 / (1.0 / se**2 + 1.0 / prior_sd**2)
        mean, sd, m = var * estimate / se**2, np.sqrt(var), OUTCOMES[o]["margin"]
        p_equiv = stats.norm.cdf((m - mean) / sd) - stats.norm.cdf((-m - mean) / sd)
        d = delta.sel(time=t, outcome=o)
        assert abs(float(d.mean()) - mean) < 3 * float(mcse_mean.sel(time=t, outcome=o)), (t, o, "mean")
        assert abs(float(d.std()) - sd) < 3 * float(mcse_sd.sel(time=t, outcome=o)), (t, o, "sd")
        row = cells.loc[(t, o)]
        assert abs(row["prob_equivalence"] - p_equiv) < 3 * row["mcse_prob_equivalence"], (t, o, "P(equiv)")


def test_independent_spec_shares_nothing_across_outcomes(tmp_path):
    """``--model independent`` extends the default: no tau, no cross-outcome error correlation, and
    every other value the default's."""
    default, default_sha = bs.load_spec("default")
    spec, sha = bs.load_spec("independent")
    assert sha != default_sha and spec.name == "independent"
    assert (spec.hierarchy.outcome_pooling, spec.correlation.outcome_structure) == ("none", "independent")
    assert spec.prior_sets == default.prior_sets and spec.decision == default.decision
    model = _model(_study(tmp_path), spec, "weakly_informative")
    assert "tau" not in model.named_vars and "r_outcome" not in model.named_vars
    assert "r_time" in model.named_vars  # times still share patients
    assert "r_outcome" in _model(_study(tmp_path / "d"), default, "weakly_informative").named_vars


def test_a_spec_that_extends_itself_is_refused(tmp_path):
    from bayes_stenosis.errors import InputError

    path = tmp_path / "loop.toml"
    path.write_text('extends = "loop.toml"\n')
    with pytest.raises(InputError, match="extends itself"):
        bs.load_spec(path)
