"""Plots of a saved run folder (matplotlib, Agg). Plots read only the files in the run folder.

Every figure is labelled with units and arm names and saved under ``plots/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

#: Parameter groups for trace and rank plots: one figure each, so every panel stays readable.
PARAMETER_GROUPS = {
    "treatment_difference": ["Delta", "delta"],
    "hierarchy": ["mu_change", "sigma_change", "tau"],
    "correlation_and_scale": ["rho", "r_time", "trial_sd_ratio"],
}


def write_plots(run: Path) -> list[Path]:
    """Write every plot of a run folder; return the paths written."""
    run = Path(run)
    out = run / "plots"
    out.mkdir(exist_ok=True)
    manifest = json.loads((run / "manifest.json").read_text())
    idata = az.from_netcdf(str(run / "posterior.nc"))
    written = []
    written += trace_and_rank(idata, out)
    if (run / "contrasts.csv").exists():
        written.append(forest(pd.read_csv(run / "contrasts.csv"), manifest, out / "forest.png"))
    if (run / "margin_curves.csv").exists():
        written.append(margin_curve_plot(pd.read_csv(run / "margin_curves.csv"), manifest, out / "margin_curves.png"))
    written.append(prior_posterior(idata, manifest, out / "prior_posterior.png"))
    plt.close("all")
    return written


def _arm_text(manifest: dict) -> str:
    arms = manifest["arms"]
    return f"{arms['new']} minus {arms['reference']}"


def trace_and_rank(idata: az.InferenceData, out: Path) -> list[Path]:
    written = []
    for group, names in PARAMETER_GROUPS.items():
        present = [n for n in names if n in idata.posterior]
        if not present:
            continue
        n_panels = sum(
            int(np.prod([idata.posterior[n].sizes[d] for d in idata.posterior[n].dims[2:]])) for n in present
        )
        height = min(2.0 * n_panels + 1, 40)
        axes = az.plot_trace(idata, var_names=present, compact=False, figsize=(12, height))
        fig = np.ravel(axes)[0].figure
        fig.suptitle(f"Trace: {group.replace('_', ' ')} (standardized units)", y=1.0)
        fig.tight_layout()
        path = out / f"trace_{group}.png"
        fig.savefig(path, dpi=80, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
        axes = az.plot_rank(idata, var_names=present, figsize=(12, height / 1.5))
        fig = np.ravel(axes)[0].figure
        fig.suptitle(f"Rank plots: {group.replace('_', ' ')}", y=1.0)
        fig.tight_layout()
        path = out / f"rank_{group}.png"
        fig.savefig(path, dpi=80, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def forest(contrasts: pd.DataFrame, manifest: dict, path: Path) -> Path:
    """Posterior intervals of each delta (natural units) with the equivalence margin shaded."""
    outcomes = list(dict.fromkeys(contrasts["outcome"]))
    margins = manifest["margins"]
    interval = manifest["interval"]
    fig, axes = plt.subplots(1, len(outcomes), figsize=(3.6 * len(outcomes), 3.2), squeeze=False)
    for ax, o in zip(axes[0], outcomes, strict=True):
        rows = contrasts[contrasts["outcome"] == o].reset_index(drop=True)
        m = margins[o]
        ax.axvspan(-m, m, color="tab:green", alpha=0.15, label=f"margin ±{m:g}")
        ax.axvline(0, color="grey", lw=0.8)
        y = np.arange(len(rows))
        ax.hlines(y, rows["lower_natural"], rows["upper_natural"], color="tab:blue", lw=2)
        ax.plot(rows["mean_natural"], y, "o", color="tab:blue")
        ax.set_yticks(y, [f"week {t:g}" for t in rows["time"]])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        unit = manifest.get("units", {}).get(o, "")
        ax.set_xlabel(f"difference in change ({unit})".replace(" ()", ""))
        ax.set_title(o)
        lim = max(
            2 * m,
            float(np.nanmax(np.abs(rows[["lower_natural", "upper_natural"]].to_numpy()))) * 1.1,
        )
        ax.set_xlim(-lim, lim)
        ax.legend(loc="lower right", fontsize=7)
    fig.suptitle(
        f"Treatment difference ({_arm_text(manifest)}), {interval['prob']:.0%} {interval['kind'].upper()} "
        "and posterior mean; negative favours " + manifest["arms"]["new"] + " (lower is better)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def margin_curve_plot(curves: pd.DataFrame, manifest: dict, path: Path) -> Path:
    """P(|delta| < m) against the margin m, one panel per outcome, the default margin marked."""
    outcomes = list(dict.fromkeys(curves["outcome"]))
    threshold = manifest["decision_rule"]["threshold"]
    fig, axes = plt.subplots(1, len(outcomes), figsize=(3.6 * len(outcomes), 3.2), squeeze=False, sharey=True)
    for ax, o in zip(axes[0], outcomes, strict=True):
        rows = curves[curves["outcome"] == o]
        for t, sub in rows.groupby("time"):
            ax.plot(sub["margin"], sub["prob_equivalence"], label=f"week {t:g}")
        ax.axvline(manifest["margins"][o], color="k", ls="--", lw=0.8, label="default margin")
        ax.axhline(threshold, color="tab:red", ls=":", lw=0.8, label=f"threshold {threshold:g}")
        ax.set_ylim(0, 1.02)
        ax.set_title(o)
        ax.set_xlabel("margin m (natural units)")
    axes[0][0].set_ylabel("P(|delta| < m)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Margin curves: posterior probability of equivalence ({_arm_text(manifest)})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def prior_posterior(idata: az.InferenceData, manifest: dict, path: Path) -> Path:
    """Prior and posterior densities of each delta (natural units), margins marked."""
    post = idata.posterior["delta_natural"]
    prior = idata.prior["delta_natural"] if "prior" in idata.groups() else None
    times = post.coords["time"].values
    outcomes = post.coords["outcome"].values
    fig, axes = plt.subplots(len(times), len(outcomes), figsize=(3.3 * len(outcomes), 2.4 * len(times)), squeeze=False)
    for i, t in enumerate(times):
        for j, o in enumerate(outcomes):
            ax = axes[i][j]
            m = manifest["margins"][str(o)]
            p = post.sel(time=t, outcome=o).values.ravel()
            lim = max(3 * m, np.quantile(np.abs(p), 0.995))
            grid = np.linspace(-lim, lim, 200)
            ax.hist(p, bins=grid, density=True, alpha=0.6, color="tab:blue", label="posterior")
            if prior is not None:
                q = prior.sel(time=t, outcome=o).values.ravel()
                ax.hist(
                    q[np.abs(q) < lim],
                    bins=grid,
                    density=True,
                    histtype="step",
                    color="k",
                    label="prior",
                )
            ax.axvspan(-m, m, color="tab:green", alpha=0.12)
            ax.set_title(f"{o}, week {t:g}", fontsize=9)
            ax.set_yticks([])
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"Prior vs posterior of delta ({_arm_text(manifest)}; margin shaded)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
