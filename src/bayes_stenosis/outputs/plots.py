"""Plots of a saved run folder (matplotlib, Agg). Plots read only the files in the run folder.

Every figure is labelled with units and arm names and saved under ``plots/``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from scipy import signal  # noqa: E402

from bayes_stenosis.decisions import probability_text  # noqa: E402
from bayes_stenosis.inference.background import start_in_background  # noqa: E402
from bayes_stenosis.outputs.headline import arm_difference, decimals_for  # noqa: E402
from bayes_stenosis.outputs.predictive import (  # noqa: E402, F401  (write_plots draws them; importable from here)
    item_labels,
    predictive_check,
    predictive_content,
    to_natural_units,
)
from bayes_stenosis.run import RunFolder  # noqa: E402

#: Readable at the report's width: no label under 9 pt.
plt.rcParams.update({"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "legend.fontsize": 9})
plt.rcParams.update({"xtick.labelsize": 9, "ytick.labelsize": 9})

#: Parameter groups for trace and rank plots: one figure each, so every panel stays readable.
PARAMETER_GROUPS = {
    "treatment_difference": ["delta_natural"],
    "hierarchy": ["Delta", "mu_change", "sigma_change", "tau"],
    "correlation_and_scale": ["rho", "r_time", "r_outcome", "trial_sd_ratio"],
}


#: What the numbers of each trace group are measured in.
GROUP_UNITS = {
    "treatment_difference": "natural units of each outcome",
    "hierarchy": "standardized units, SMD",
    "correlation_and_scale": "correlations unitless; SD ratios relative to the reference SD",
}

#: One line style and marker per follow-up time (margin curves): curves of different weeks that coincide
#: stay visible.
TIME_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))


class WeekLabeller(az.labels.BaseLabeller):
    """Panel titles on one line, time as ``week 4``: ``delta_natural[week 4, ODI]``."""

    def dim_coord_to_str(self, dim, coord_val, coord_idx):
        if dim == "time":
            return f"week {float(coord_val):g}"
        return super().dim_coord_to_str(dim, coord_val, coord_idx)

    def make_label_vert(self, var_name, sel, isel):
        return self.make_label_flat(var_name, sel, isel)


#: The InferenceData groups the figures read (not the pointwise log-likelihood: 1 GB at 10,000 patients).
PLOTTED_GROUPS = {
    "posterior",
    "sample_stats",
    "prior",
    "prior_predictive",
    "posterior_predictive",
    "observed_data",
    "constant_data",
}


def write_plots(run: Path | RunFolder, *, parallel: bool = True) -> list[Path]:
    """Write every plot of a run folder; return the paths written.

    A path is the writer's own folder (``fit`` draws into the run's temporary folder); a
    :class:`~bayes_stenosis.run.RunFolder` is a published run, whose files are checked as they are read.
    With ``parallel`` (and ``fork``: Linux), the trace and rank figures, a third to half of the time, are
    drawn in a forked process while this one draws the rest (the same files; 2 cores, 2 processes).
    """
    loaded = run if isinstance(run, RunFolder) else RunFolder(Path(run), staging=True)
    run = loaded.path
    out = run / "plots"
    out.mkdir(exist_ok=True)
    manifest = loaded.manifest
    idata = loaded.idata
    for group in set(idata.groups()) & PLOTTED_GROUPS:  # in memory: a forked process must not read this
        getattr(idata, group).load()  # process's open file (the per-patient log-likelihood is not plotted)
    # the forked process's share: every trace figure and the first groups' rank plots; this process draws the
    # last group's rank plot after its own figures (measured: about 3 s of drawing each)
    last = list(PARAMETER_GROUPS)[-1:]
    child = functools.partial(trace_and_rank, idata, out, rank_groups=list(PARAMETER_GROUPS)[:-1])
    traces = start_in_background(child, enabled=parallel)
    written = []
    if loaded.has("contrasts.csv"):
        decisions = loaded.table("decisions") if loaded.has("decisions.csv") else None
        written.append(forest(loaded.table("contrasts"), manifest, out / "forest.png", decisions))
    if loaded.has("margin_curves.csv"):
        written.append(margin_curve_plot(loaded.table("margin_curves"), manifest, out / "margin_curves.png"))
    written.append(prior_posterior(idata, manifest, out / "prior_posterior.png", loaded.prior_delta))
    if loaded.has("decisions.csv"):
        written.append(posterior_margin(idata, manifest, out / "posterior_margin.png", loaded.table("decisions")))
    written += diagnostic_and_check_plots(idata, run, manifest, out)
    written += trace_and_rank(idata, out, trace_groups=[], rank_groups=last)
    plt.close("all")
    return traces.result() + written


def trace_and_rank(
    idata: az.InferenceData,
    out: Path,
    *,
    trace_groups: list[str] | None = None,
    rank_groups: list[str] | None = None,
) -> list[Path]:
    """Per parameter group: one compact trace figure and one rank plot with a panel per parameter cell.

    Rank plots are the convergence check (one panel per cell; chains that agree scatter around the dashed
    uniform line); the compact trace (every cell of a parameter in one panel) shows stationarity at a
    glance. Per-cell traces are one ArviZ call on ``posterior.nc`` (``az.plot_trace(..., compact=False)``):
    drawn by default they took 3x longer than the whole rest of the plots. ``trace_groups`` and ``rank_groups``
    (default: all of :data:`PARAMETER_GROUPS`) split the figures between processes.
    """
    written = []
    for group, names in PARAMETER_GROUPS.items():
        present = [n for n in names if n in idata.posterior]
        if not present:
            continue
        n_panels = sum(
            int(np.prod([idata.posterior[n].sizes[d] for d in idata.posterior[n].dims[2:]])) for n in present
        )
        if trace_groups is None or group in trace_groups:
            axes = az.plot_trace(idata, var_names=present, compact=True, figsize=(12, 2.2 * len(present) + 1))
            title = f"Trace: {group.replace('_', ' ')} ({GROUP_UNITS.get(group, '')}); every cell in one panel"
            written.append(_save_group_figure(axes, title, out / f"trace_{group}.png"))
        if rank_groups is None or group in rank_groups:
            # vertical lines (deviation from uniform per rank bin), not bars: a tenth of the matplotlib patches
            axes = az.plot_rank(
                idata,
                var_names=present,
                kind="vlines",
                figsize=(12, min(1.4 * n_panels + 1, 28)),
                labeller=WeekLabeller(),
            )
            title = f"Rank plots: {group.replace('_', ' ')}"
            written.append(_save_group_figure(axes, title, out / f"rank_{group}.png"))
    return written


def _save_group_figure(axes, title: str, path: Path) -> Path:
    """Title, lay out, save at screen resolution and close the figure of ``axes``."""
    fig = np.ravel(axes)[0].figure
    title_room = 0.25 / fig.get_figheight()  # inches kept free at the top for the title
    fig.suptitle(title, y=1 - 0.08 / fig.get_figheight(), va="top")
    # laid out once: bbox_inches="tight" drew every figure a second time (a fifth of the plots' time)
    fig.tight_layout(rect=(0, 0, 1, 1 - title_room))
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def forest(contrasts: pd.DataFrame, manifest: dict, path: Path, decisions: pd.DataFrame | None = None) -> Path:
    """Posterior mean and interval of each delta (natural units), the equivalence margin shaded, and
    P(equiv) written beside each interval (from ``decisions``)."""
    outcomes = list(dict.fromkeys(contrasts["outcome"]))
    margins, units = manifest["margins"], manifest.get("units", {})
    interval = manifest["interval"]
    p_equiv = {}
    if decisions is not None:  # as in every table: a bound where no draw disagrees
        cells = decisions[decisions["scope"] == "cell"]
        n = int(manifest["sampler"]["chains"]) * int(manifest["sampler"]["draws"])
        thresholds = cells["decision_threshold"] if "decision_threshold" in cells else [None] * len(cells)
        p_equiv = {
            (float(t), str(o)): probability_text(p, mc, n, threshold=th)
            for t, o, p, mc, th in zip(
                cells.time, cells.outcome, cells.prob_equivalence, cells.mcse_prob_equivalence, thresholds, strict=True
            )
        }
    fig, axes = plt.subplots(1, len(outcomes), figsize=(max(3.4 * len(outcomes), 6.5), 3.6), squeeze=False)
    for ax, o in zip(axes[0], outcomes, strict=True):
        rows = contrasts[contrasts["outcome"] == o].reset_index(drop=True)
        m = margins[o]
        ax.axvspan(-m, m, color="tab:green", alpha=0.15, label=f"margin ±{m:g}")
        ax.axvline(0, color="grey", lw=0.8)
        y = np.arange(len(rows))
        ax.hlines(y, rows["lower_natural"], rows["upper_natural"], color="tab:blue", lw=2.5)
        ax.plot(rows["mean_natural"], y, "o", color="tab:blue", ms=6)
        for yi, t in enumerate(rows["time"]):
            p = p_equiv.get((float(t), str(o)))
            if p is not None:
                ax.annotate(f"P(equiv) {p}", (0, yi), xytext=(0, 7), textcoords="offset points", ha="center")
        ax.set_yticks(y, [f"week {t:g}" for t in rows["time"]])
        ax.set_ylim(-0.6, len(rows) - 0.2)
        ax.set_xlabel(f"δ, difference in change ({units.get(o, 'natural units')})")
        ax.set_title(f"{o} (margin ±{m:g} {units.get(o, '')})".replace(" )", ")"))
        lim = max(2 * m, float(np.nanmax(np.abs(rows[["lower_natural", "upper_natural"]].to_numpy()))) * 1.1)
        ax.set_xlim(-lim, lim)
    fig.suptitle(
        f"Treatment difference ({arm_difference(manifest)}): posterior mean and {interval['prob']:.0%} "
        f"{interval['kind'].upper()}; green band: the equivalence margin",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def margin_curve_plot(curves: pd.DataFrame, manifest: dict, path: Path) -> Path:
    """P(|delta| < m) against the margin m, one panel per outcome, one line style and marker per week
    (curves of different weeks often coincide), the study margin and the decision threshold marked."""
    outcomes = list(dict.fromkeys(curves["outcome"]))
    threshold = manifest["decision_rule"]["threshold"]
    fig, axes = plt.subplots(1, len(outcomes), figsize=(max(3.4 * len(outcomes), 6.5), 3.6), squeeze=False, sharey=True)
    for ax, o in zip(axes[0], outcomes, strict=True):
        rows = curves[curves["outcome"] == o]
        for k, (t, sub) in enumerate(rows.groupby("time")):
            line, marker = TIME_STYLES[k % len(TIME_STYLES)]
            every = max(1, len(sub) // 8)  # a few markers, offset per week so coinciding curves show both
            ax.plot(
                sub["margin"],
                sub["prob_equivalence"],
                ls=line,
                marker=marker,
                markevery=(k % every, every),
                ms=5,
                mfc="none" if k else None,
                label=f"week {t:g}",
            )
        ax.axvline(manifest["margins"][o], color="k", ls="--", lw=0.9, label="study margin")
        ax.axhline(threshold, color="tab:red", ls=":", lw=1, label=f"threshold {threshold:g}")
        ax.set_ylim(0, 1.02)
        ax.set_title(o)
        ax.set_xlabel(f"margin m ({manifest.get('units', {}).get(o, 'natural units')})")
    axes[0][0].set_ylabel("P(|δ| < m)")
    axes[0][-1].legend(loc="lower right")
    fig.suptitle(f"Margin curves: posterior probability of equivalence ({arm_difference(manifest)})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def density(draws: np.ndarray, grid: np.ndarray, bins: int = 4096) -> np.ndarray:
    """A smooth density of ``draws`` on ``grid`` (Gaussian kernel, Scott's bandwidth, as
    ``scipy.stats.gaussian_kde``), computed on ``bins`` bins: the draws' histogram convolved with the
    kernel, then interpolated to ``grid``. Exact evaluation costs draws x grid points (1.2 s for the
    16 densities of a fit's 20,000 prior draws); binned, milliseconds. A bin is a few % of the bandwidth
    for the sizes drawn here, so the curve agrees with the exact one to < 1e-3 of its peak (tested)."""
    draws = draws[np.isfinite(draws)]
    if draws.size < 2 or np.std(draws) == 0:
        return np.zeros_like(grid)
    bandwidth = np.std(draws, ddof=1) * draws.size ** (-1 / 5)  # Scott's factor x the sample SD
    low = min(draws.min(), grid.min()) - 5 * bandwidth
    high = max(draws.max(), grid.max()) + 5 * bandwidth
    counts, edges = np.histogram(draws, bins=bins, range=(low, high))
    width = edges[1] - edges[0]
    half = int(np.ceil(5 * bandwidth / width))
    offsets = np.arange(-half, half + 1) * width
    kernel = np.exp(-0.5 * (offsets / bandwidth) ** 2) / (bandwidth * np.sqrt(2 * np.pi))
    smooth = signal.fftconvolve(counts / draws.size, kernel, mode="same")
    return np.interp(grid, (edges[:-1] + edges[1:]) / 2, smooth, left=0.0, right=0.0)


def prior_posterior(
    idata: az.InferenceData, manifest: dict, path: Path, prior_delta: xr.DataArray | None = None
) -> Path:
    """Prior and posterior densities of each delta (natural units), the margin shaded.

    The prior is drawn from ``prior_delta`` (the run's ``prior_delta.nc``: 20,000 draws by default)
    when given, else from the InferenceData's prior group; both as smooth densities.
    """
    post = idata.posterior["delta_natural"]
    prior = prior_delta
    if prior is None and "prior" in idata.groups():
        prior = idata.prior["delta_natural"]
    n_prior = 0 if prior is None else int(prior.sizes.get("chain", 1) * prior.sizes["draw"])
    times = post.coords["time"].values
    outcomes = post.coords["outcome"].values
    units = manifest.get("units", {})
    fig, axes = plt.subplots(len(times), len(outcomes), figsize=(3.2 * len(outcomes), 2.6 * len(times)), squeeze=False)
    for i, t in enumerate(times):
        for j, o in enumerate(outcomes):
            ax = axes[i][j]
            m = manifest["margins"][str(o)]
            p = post.sel(time=t, outcome=o).values.ravel()
            lim = max(3 * m, float(np.quantile(np.abs(p), 0.995)))
            grid = np.linspace(-lim, lim, 401)
            ax.axvspan(-m, m, color="tab:green", alpha=0.12, label="margin")
            posterior_density = density(p, grid)
            ax.fill_between(grid, posterior_density, color="tab:blue", alpha=0.35, lw=0)
            ax.plot(grid, posterior_density, color="tab:blue", lw=1.5, label="posterior")
            if prior is not None:
                q = prior.sel(time=t, outcome=o).values.ravel()
                ax.plot(grid, density(q, grid), color="0.3", lw=1.5, label="prior")
            ax.set_xlim(-lim, lim)
            ax.set_ylim(bottom=0)
            ax.set_title(f"{o}, week {float(t):g}")
            if j == 0:
                ax.set_ylabel("density")
            if i == len(times) - 1:
                ax.set_xlabel(f"δ ({units.get(str(o), 'natural units')})")
    axes[0][-1].legend(loc="upper right")
    source = f"prior: {n_prior:,} draws" if n_prior else "no prior draws"
    fig.suptitle(f"Prior and posterior of δ ({arm_difference(manifest)}; {source}; margin shaded)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def cell_probability_texts(decisions: pd.DataFrame, manifest: dict) -> dict[tuple[float, str], dict[str, str]]:
    """Per cell, P(equiv) and P(new arm better) as the tables print them (a bound where no draw disagrees)."""
    n = int(manifest["sampler"]["chains"]) * int(manifest["sampler"]["draws"])
    out = {}
    for rec in decisions[decisions["scope"] == "cell"].to_dict("records"):
        out[(float(rec["time"]), str(rec["outcome"]))] = {
            "equiv": probability_text(
                rec["prob_equivalence"], rec["mcse_prob_equivalence"], n, threshold=rec.get("decision_threshold")
            ),
            "better": probability_text(rec["prob_superiority"], rec["mcse_prob_superiority"], n),
            "direction": str(rec.get("direction", "lower_is_better")),
        }
    return out


def posterior_margin(idata: az.InferenceData, manifest: dict, path: Path, decisions: pd.DataFrame) -> Path:
    """ArviZ ``plot_posterior(rope=margin, ref_val=0)`` in the run's conventions: per cell, the posterior density
    of delta (natural units) with its mean and interval (the run's, e.g. 95 % ETI, not ArviZ's HDI), the margin
    band with P(equiv) written in it, and the line at 0 with the probability that the new arm is better."""
    post = idata.posterior["delta_natural"]
    times, outcomes = post.coords["time"].values, [str(o) for o in post.coords["outcome"].values]
    interval = manifest["interval"]
    texts = cell_probability_texts(decisions, manifest)
    fig, axes = plt.subplots(len(times), len(outcomes), figsize=(3.4 * len(outcomes), 2.9 * len(times)), squeeze=False)
    for i, t in enumerate(times):
        for j, o in enumerate(outcomes):
            ax, m = axes[i][j], manifest["margins"][o]
            draws = post.sel(time=t, outcome=o).values.ravel()
            _posterior_margin_panel(ax, draws, m, texts.get((float(t), o), {}), manifest)
            ax.set_title(f"{o}, week {float(t):g}: mean {draws.mean():.{decimals_for(m)}f}", fontsize=10)
            if i == len(times) - 1:
                ax.set_xlabel(f"δ ({manifest.get('units', {}).get(o, 'natural units')})")
    fig.suptitle(
        f"Posterior of δ ({arm_difference(manifest)}): {interval['prob']:.0%} {interval['kind'].upper()} (black bar), "
        "margin (green band) with P(equiv), 0 (orange line) with P(new arm better)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _posterior_margin_panel(ax, draws: np.ndarray, m: float, cell: dict[str, str], manifest: dict) -> None:
    """One cell of :func:`posterior_margin`: density, interval bar, margin band, 0 line and the texts."""
    arms, interval = manifest["arms"], manifest["interval"]
    tail = (1 - interval["prob"]) / 2
    lim = max(2 * m, float(np.quantile(np.abs(draws), 0.995))) * 1.05
    grid = np.linspace(-lim, lim, 401)
    dens = density(draws, grid)
    ax.axvspan(-m, m, color="tab:green", alpha=0.15)
    ax.plot(grid, dens, color="tab:blue", lw=1.5)
    ax.hlines(0.04 * dens.max(), *np.quantile(draws, [tail, 1 - tail]), color="k", lw=3)
    ax.axvline(0, color="tab:orange", lw=1)
    # lower is better: delta < 0 favours the new arm
    left, right = (arms["new"], arms["reference"])
    if cell.get("direction") == "higher_is_better":
        left, right = right, left
    put = {"transform": ax.transAxes, "fontsize": 9}
    ax.text(0.5, 0.93, f"P(equiv) {cell.get('equiv', '-')}", ha="center", **put)
    ax.text(0.02, 0.80, f"← favours {left}", ha="left", color="tab:orange", **put)
    ax.text(0.98, 0.80, f"favours {right} →", ha="right", color="tab:orange", **put)
    ax.text(0.5, 0.68, f"P({arms['new']} better) {cell.get('better', '-')}", ha="center", **put)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(0, dens.max() * 1.9 if dens.max() > 0 else 1)  # room for the texts above the curve
    ax.set_yticks([])


def diagnostic_and_check_plots(idata: az.InferenceData, run: Path, manifest: dict, out: Path) -> list[Path]:
    """Energy plot, posterior and prior predictive checks (whichever the run's groups allow)."""
    written = []
    if "sample_stats" in idata.groups() and "energy" in idata.sample_stats:
        written.append(energy(idata, out / "energy.png"))
    labels_path = Path(run) / "observed_quantities.csv"
    labels = pd.read_csv(labels_path) if labels_path.is_file() else None
    for group, name in (("posterior_predictive", "ppc.png"), ("prior_predictive", "prior_predictive.png")):
        path = predictive_check(idata, labels, manifest, out / name, group=group)
        if path is not None:
            written.append(path)
    return written


def energy(idata: az.InferenceData, path: Path) -> Path:
    """Marginal energy vs energy transition distribution (Betancourt 2016), E-BFMI per chain."""
    ax = az.plot_energy(idata, figsize=(6.5, 3.6), textsize=9)
    fig = np.ravel(ax)[0].figure
    fig.suptitle("Energy: marginal energy vs energy transitions (similar widths = good exploration)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
