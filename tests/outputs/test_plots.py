"""Plots of a run folder: what each figure draws, read back from the matplotlib figure before it is closed
(weeks told apart on the margin curves, the prior a smooth density of its 20,000 draws, P(equiv) on the
forest plot, one-line panel titles with the week)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayes_stenosis.decisions import probability_text
from bayes_stenosis.outputs import plots
from bayes_stenosis.run import load_run


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions draw, captured when they close them."""
    captured = []
    close = plots.plt.close

    def keep(fig=None):
        if fig is not None and not isinstance(fig, str):
            captured.append(fig)
        else:
            close(fig)

    monkeypatch.setattr(plots.plt, "close", keep)
    yield captured
    for fig in captured:
        close(fig)


def test_margin_curves_of_different_weeks_are_told_apart(pristine_run, tmp_path, figures):
    run = load_run(pristine_run)
    plots.margin_curve_plot(run.table("margin_curves"), run.manifest, tmp_path / "m.png")
    (fig,) = figures
    for ax in fig.axes:
        weeks = [line for line in ax.get_lines() if line.get_label().startswith("week")]
        assert [line.get_label() for line in weeks] == ["week 4", "week 8"]
        assert weeks[0].get_linestyle() != weeks[1].get_linestyle()
        assert weeks[0].get_marker() != weeks[1].get_marker()
    assert (tmp_path / "m.png").stat().st_size > 10_000


def test_prior_is_a_smooth_density_of_all_its_draws(pristine_run, tmp_path, figures):
    run = load_run(pristine_run)
    idata = run.idata
    rng = np.random.default_rng(1)
    sd = 16.0
    coords = {"time": idata.posterior.time.values, "outcome": idata.posterior.outcome.values}
    draws = xr.DataArray(rng.normal(0, sd, (1, 20_000, 2, 2)), dims=("chain", "draw", "time", "outcome"), coords=coords)
    plots.prior_posterior(idata, run.manifest, tmp_path / "p.png", draws)
    (fig,) = figures
    assert "20,000 draws" in fig._suptitle.get_text()
    ax = fig.axes[0]  # ODI, week 4
    (prior,) = [line for line in ax.get_lines() if line.get_label() == "prior"]
    x, y = prior.get_data()
    assert len(x) == 401 and ax.get_ylabel() == "density"
    # a Gaussian kernel density of normal draws is the normal with the kernel's variance added:
    # Scott's bandwidth is n^(-1/5) sample SDs
    sample = draws.isel(time=0, outcome=0).values.ravel()
    s = sample.std(ddof=1)
    n, h = sample.size, s * 20_000 ** (-1 / 5)
    expected = stats.norm.pdf(x, sample.mean(), np.sqrt(s**2 + h**2))
    # pointwise Monte Carlo SE of a kernel density: sqrt(f R(K) / (n h)), R(K) = 1 / (2 sqrt(pi)) (Gaussian)
    se = np.sqrt(expected / (2 * np.sqrt(np.pi)) / (n * h))
    assert np.all(np.abs(y - expected) < 4.5 * se + 1e-9), np.max(np.abs(y - expected) / se)


def test_forest_writes_p_equiv_beside_each_interval(pristine_run, tmp_path, figures):
    run = load_run(pristine_run)
    decisions = run.decisions
    plots.forest(run.contrasts, run.manifest, tmp_path / "f.png", decisions)
    (fig,) = figures
    written = sorted(t.get_text() for ax in fig.axes for t in ax.texts)
    cells = decisions[decisions.scope == "cell"]
    n = run.manifest["sampler"]["chains"] * run.manifest["sampler"]["draws"]
    expected = [
        probability_text(p, m, n, threshold=th)
        for p, m, th in zip(cells.prob_equivalence, cells.mcse_prob_equivalence, cells.decision_threshold, strict=True)
    ]
    assert written == sorted(f"P(equiv) {p}" for p in expected)
    assert any(p.startswith(">") for p in expected)  # a bound where no draw disagrees, as in the tables
    assert fig.axes[0].get_xlabel() == "δ, difference in change (points)"


def test_trace_titles_name_the_week_on_one_line():
    labeller = plots.WeekLabeller()
    label = labeller.make_label_vert("delta_natural", {"time": 4.0, "outcome": "ODI"}, {"time": 0, "outcome": 0})
    assert label == "delta_natural[week 4, ODI]"


def test_posterior_against_margin_and_zero_writes_the_tables_probabilities(pristine_run, tmp_path, figures):
    """plot_posterior(rope=margin, ref_val=0) in the run's conventions: the interval bar is the 95 % ETI of the
    draws, the band the margin, and the texts the decision table's P(equiv) and P(new arm better)."""
    run = load_run(pristine_run)
    decisions, manifest = run.decisions, run.manifest
    plots.posterior_margin(run.idata, manifest, tmp_path / "pm.png", decisions)
    (fig,) = figures
    cells = decisions[decisions.scope == "cell"].reset_index(drop=True)
    n = manifest["sampler"]["chains"] * manifest["sampler"]["draws"]
    post = run.idata.posterior["delta_natural"]
    for ax, rec in zip(fig.axes, cells.to_dict("records"), strict=True):
        texts = [t.get_text() for t in ax.texts]
        equiv = probability_text(
            rec["prob_equivalence"], rec["mcse_prob_equivalence"], n, threshold=rec["decision_threshold"]
        )
        better = probability_text(rec["prob_superiority"], rec["mcse_prob_superiority"], n)
        assert f"P(equiv) {equiv}" in texts and f"P(new_arm better) {better}" in texts
        assert "← favours new_arm" in texts  # lower is better: delta < 0 favours the new arm
        assert ax.get_title().startswith(f"{rec['outcome']}, week {rec['time']:g}")
        draws = post.sel(time=rec["time"], outcome=rec["outcome"]).values.ravel()
        (bar,) = [c for c in ax.collections if hasattr(c, "get_segments")]  # the interval
        (segment,) = bar.get_segments()
        np.testing.assert_allclose(segment[:, 0], np.quantile(draws, [0.025, 0.975]))
        (band,) = ax.patches  # the margin
        m = manifest["margins"][rec["outcome"]]
        np.testing.assert_allclose([band.get_x(), band.get_x() + band.get_width()], [-m, m])


@pytest.mark.parametrize("shape", ["heavy_tailed", "bimodal", "few_draws"])
def test_binned_density_equals_the_exact_gaussian_kernel_density(shape):
    """The plots' binned kernel density against scipy's exact one (same kernel and Scott bandwidth). Binning
    moves each draw by at most half a bin; with bins a few % of the bandwidth the curve is off by about
    (bin / bandwidth)^2 of its peak, so 1e-3 of the peak bounds it (deterministic: no Monte Carlo error)."""
    rng = np.random.default_rng(7)
    draws = {
        "heavy_tailed": 3 * rng.standard_t(4, 20_000),
        "bimodal": np.r_[rng.normal(0, 1, 3000), rng.normal(4, 0.3, 3000)],
        "few_draws": rng.normal(2, 0.5, 50),
    }[shape]
    grid = np.linspace(draws.min() - 1, draws.max() + 1, 401)
    exact = stats.gaussian_kde(draws)(grid)
    assert np.max(np.abs(plots.density(draws, grid) - exact)) < 1e-3 * exact.max()
