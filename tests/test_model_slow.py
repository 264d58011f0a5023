"""Statistical checks of the model against known answers (slow: each samples a model).

Tolerances are in Monte Carlo standard errors (MCSE from ArviZ on the same draws).
"""

from __future__ import annotations

import dataclasses

import arviz as az
import numpy as np
import pytest
from scipy import special, stats

from bayes_stenosis.inference import SamplerSettings, sample
from bayes_stenosis.model import build_model, prepare_inputs, resolve_prior
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import spec_variant, write_study

pytestmark = pytest.mark.slow

# follow-up SD = baseline SD (the closed forms below use the change SD sqrt(2 (1 - rho)))
EQUAL_SDS = {"followup_sd_ratio_median": 1.0, "followup_sd_ratio_log_sd": 0.0}
SETTINGS = SamplerSettings(name="nutpie", chains=4, draws=2000, tune=1000, target_accept=0.95, seed=7, prior_draws=10)


def _fit(folder, spec, prior_set, settings=SETTINGS):
    inputs = prepare_inputs(load_study(folder), spec)
    prior = resolve_prior(spec, prior_set, inputs)
    idata, _ = sample(build_model(inputs, spec, prior), settings, progress=False)
    return idata, inputs, prior


def _check_against_grid(draws_ds, grid, density, n_mcse=3.0):
    """Posterior mean and 5 %/95 % quantiles vs a grid density, within n_mcse MCSE."""
    density = density / np.trapezoid(density, grid)
    cdf = np.concatenate([[0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    exact = {
        "mean": np.trapezoid(grid * density, grid),
        "q05": np.interp(0.05, cdf, grid),
        "q95": np.interp(0.95, cdf, grid),
    }
    values = draws_ds["x"].values.ravel()
    got = {
        "mean": values.mean(),
        "q05": np.quantile(values, 0.05),
        "q95": np.quantile(values, 0.95),
    }
    mcse = {
        "mean": float(az.mcse(draws_ds, method="mean")["x"]),
        "q05": float(az.mcse(draws_ds, method="quantile", prob=0.05)["x"]),
        "q95": float(az.mcse(draws_ds, method="quantile", prob=0.95)["x"]),
    }
    for key in exact:
        assert abs(got[key] - exact[key]) < n_mcse * mcse[key], (
            key,
            got[key],
            exact[key],
            mcse[key],
        )


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
    idata, inputs, prior = _fit(folder, spec, "weakly_informative")
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
    _check_against_grid(delta.to_dataset(name="x"), grid, prior_density * likelihood)
    if relation == "<":
        assert float((delta < 0).mean()) > 0.9  # moved away from 0, towards the new arm


def test_contrast_posterior_matches_conjugate_normal(tmp_path):
    estimate, se, ref_sd = -2.0, 3.0, 16.0
    folder = write_study(
        tmp_path / "s",
        rows={
            "contrasts.csv": [
                {
                    "outcome": "ODI",
                    "time": 4,
                    "measure": "change",
                    "direction": "new_minus_reference",
                    "estimate": estimate,
                    "se": se,
                }
            ]
        },
    )
    spec = spec_variant()
    idata, _, prior = _fit(folder, spec, "vague")
    prior_sd = prior.sigma * ref_sd  # Normal(0, 10 SMD) on the natural scale
    post_var = 1 / (1 / se**2 + 1 / prior_sd**2)
    post_mean = post_var * estimate / se**2
    draws = idata.posterior["delta_natural"].sel(time=4.0, outcome="ODI").to_dataset(name="x")
    grid = np.linspace(post_mean - 8 * np.sqrt(post_var), post_mean + 8 * np.sqrt(post_var), 4001)
    _check_against_grid(draws, grid, stats.norm.pdf(grid, post_mean, np.sqrt(post_var)))
    # MCSE of the SD by the delta method on the second central moment (az.mcse(method="sd")
    # fails under numba in arviz 0.23.4)
    centred = (draws["x"] - draws["x"].mean()) ** 2
    sd_mcse = float(az.mcse(centred.to_dataset(name="x"), method="mean")["x"]) / (2 * float(draws["x"].std()))
    assert abs(draws["x"].values.std() - np.sqrt(post_var)) < 3 * sd_mcse


def _score_rows(n, sd_b, sd_f, base_mean, follow_means):
    rows = []
    for arm, follow in zip(("reference_arm", "new_arm"), follow_means, strict=True):
        rows.append(
            {
                "arm": arm,
                "outcome": "ODI",
                "time": 0,
                "kind": "score",
                "n": n,
                "mean": base_mean,
                "sd": sd_b,
            }
        )
        rows.append(
            {
                "arm": arm,
                "outcome": "ODI",
                "time": 4,
                "kind": "score",
                "n": n,
                "mean": follow,
                "sd": sd_f,
            }
        )
    return rows


def test_arm_summaries_fixed_correlation_match_closed_form_and_uncertain_is_heavier_tailed(
    tmp_path,
):
    n, sd, rho = 200, 16.0, 0.5
    folder = write_study(tmp_path / "s", rows={"arm_summaries.csv": _score_rows(n, sd, sd, 40.0, (30.0, 28.0))})
    # vague priors on everything the closed form treats as flat: Delta (the "vague" set, 10 SMD) and the
    # reference-arm change (mu_change). The default N(0, 1 SMD) on the change would shrink the reference
    # arm's change (-10 points, SE 1.1) by se^2 / (16^2 + se^2) ~ 0.5 %, moving delta by ~0.05 points:
    # several MCSEs at 6,000 draws per chain.
    vague_change = {"mu_change_sigma": 10.0}
    fixed = spec_variant(correlation={"fixed_baseline_followup": rho}, hierarchy=vague_change)
    # more draws than elsewhere: the tail comparison below needs small quantile MCSEs
    long_run = dataclasses.replace(SETTINGS, draws=6000)
    idata, inputs, _ = _fit(folder, fixed, "vague", long_run)
    # closed form: change SD = sqrt(2 (1 - rho)) * 16 = 16; SE of the difference = 16 sqrt(2/200)
    sd_change = np.sqrt(sd**2 + sd**2 - 2 * rho * sd * sd)
    se = sd_change * np.sqrt(2 / n)
    draws = idata.posterior["delta_natural"].sel(time=4.0, outcome="ODI").to_dataset(name="x")
    grid = np.linspace(-2 - 8 * se, -2 + 8 * se, 4001)
    # the reported SDs are estimates (chi-square), which widens the posterior by a factor
    # ~ (1 + 1/(2(n-1)))^(1/2) - 1 ~ 0.1 %: negligible against the MCSE
    _check_against_grid(draws, grid, stats.norm.pdf(grid, -2.0, se))

    # an uncertain correlation (uniform) with the same mean: same variance, heavier tails
    wide = spec_variant(correlation={"ODI": {"alpha": 1.0, "beta": 1.0}}, hierarchy=vague_change)
    idata_w, _, _ = _fit(folder, wide, "vague", long_run)
    wide_draws = idata_w.posterior["delta_natural"].sel(time=4.0, outcome="ODI").to_dataset(name="x")

    def width_and_mcse(ds):
        # 99 % interval width; its MCSE from the MCSEs of the two endpoints (independent tails)
        x = ds["x"].values.ravel()
        mcse = [float(az.mcse(ds, method="quantile", prob=p)["x"]) for p in (0.005, 0.995)]
        return np.quantile(x, 0.995) - np.quantile(x, 0.005), float(np.hypot(*mcse))

    w_fixed, m_fixed = width_and_mcse(draws)
    w_wide, m_wide = width_and_mcse(wide_draws)
    assert w_wide - w_fixed > 3 * np.hypot(m_fixed, m_wide), (w_wide, w_fixed, m_fixed, m_wide)
    # excess kurtosis: 0 for the fixed-rho normal; a uniform rho makes the variance uniform on (0, 2c),
    # excess kurtosis 3 E[v^2] / E[v]^2 - 3 = 1. Sample kurtosis SE ~ sqrt(24 / ESS); require 3 SE.
    ess = min(float(az.ess(draws)["x"]), float(az.ess(wide_draws)["x"]))
    k_fixed, k_wide = stats.kurtosis(draws["x"].values.ravel()), stats.kurtosis(wide_draws["x"].values.ravel())
    assert k_wide - k_fixed > 3 * np.sqrt(2 * 24 / ess), (k_wide, k_fixed, ess)


def _between_only(tmp_path, name, n_per_arm=(20, 20), n_total=None):
    return write_study(
        tmp_path / name,
        n_per_arm=n_per_arm,
        n_total=n_total,
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


def test_larger_trial_reporting_p_above_alpha_gives_a_narrower_posterior(tmp_path):
    spec = spec_variant(
        correlation={"fixed_baseline_followup": 0.5}, scale={"trial_sd_log_ratio_sigma": 0.0, **EQUAL_SDS}
    )
    widths = []
    for n in (20, 200):
        idata, _, _ = _fit(_between_only(tmp_path, f"n{n}", (n, n)), spec, "weakly_informative")
        x = np.abs(idata.posterior["delta_natural"].sel(time=4.0, outcome="ODI").values.ravel())
        widths.append(np.quantile(x, 0.9))
    # the 90th percentile of |delta| shrinks by far more than its Monte Carlo error (~1-2 %)
    assert widths[1] < 0.6 * widths[0], widths


def test_unknown_split_of_the_total_matters_little(tmp_path):
    """Equal split (19.5/19.5 of 39) vs the extreme splits 15/24 and 24/15."""
    spec = spec_variant(
        correlation={"fixed_baseline_followup": 0.5}, scale={"trial_sd_log_ratio_sigma": 0.0, **EQUAL_SDS}
    )
    q90 = {}
    for label, sizes, total in (("equal", (None, None), 39), ("15/24", (15, 24), None), ("24/15", (24, 15), None)):
        idata, _, _ = _fit(_between_only(tmp_path, label.replace("/", "_"), sizes, total), spec, "weakly_informative")
        x = np.abs(idata.posterior["delta_natural"].sel(time=4.0, outcome="ODI").values.ravel())
        q90[label] = np.quantile(x, 0.9)
    # SE factor sqrt(1/15 + 1/24) vs sqrt(4/39): 3 % wider; the posterior tail moves by well under 10 %
    for label in ("15/24", "24/15"):
        assert abs(q90[label] / q90["equal"] - 1) < 0.1, q90
