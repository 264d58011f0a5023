"""The assurance curve: P(declare equivalence) and P(a wrong "equivalent") over the per-arm n."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def plot_assurance(design: pd.DataFrame, path: Path, *, target: float, title: str, units: dict | None = None) -> None:
    """Two panels over the per-arm n: assurance (each cell thin, all cells jointly bold, with their
    Monte Carlo intervals; the target dashed) and P(declared equivalent while the truth is beyond a margin)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), constrained_layout=True)
    cells = design[design["scope"] == "cell"]
    outcomes = list(dict.fromkeys(cells["outcome"]))
    times = sorted(cells["time"].unique())
    colours = dict(zip(outcomes, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    styles = dict(zip(times, ["-", "--", ":", "-."], strict=False))
    joint = design[design["scope"] == "joint_all"].sort_values("n_per_arm")
    for ax, what, label in (
        (axes[0], "assurance", "P(declare equivalence)"),
        (axes[1], "prob_wrong_equivalent", 'P("equivalent" while the truth is beyond a margin)'),
    ):
        for (t, o), d in cells.groupby(["time", "outcome"], sort=False):
            d = d.sort_values("n_per_arm")
            ax.plot(
                d["n_per_arm"],
                d[what],
                styles.get(t, "-"),
                color=colours[o],
                lw=1.2,
                marker="o",
                ms=3,
                label=f"{o}, week {t:g}",
            )
        ax.fill_between(joint["n_per_arm"], joint[f"{what}_low"], joint[f"{what}_high"], color="black", alpha=0.15)
        ax.plot(
            joint["n_per_arm"], joint[what], "-", color="black", lw=2.4, marker="s", ms=4, label="all cells jointly"
        )
        ax.set_xlabel("patients per arm (n)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.set_xticks(np.unique(design["n_per_arm"]))
        ax.tick_params(axis="x", labelsize=7, labelrotation=45)
    axes[0].axhline(target, color="grey", ls="--", lw=1, label=f"target {target:g}")
    if len(joint):  # assurance cannot exceed the design prior's probability that the truth is inside
        ceiling = float(joint["prob_truth_inside"].iloc[0])
        axes[0].axhline(
            ceiling, color="black", ls=":", lw=1, label=f"P(all cells inside) under the design prior {ceiling:.3f}"
        )
    axes[0].set_ylim(0, 1.02)
    axes[1].set_ylim(bottom=0)
    axes[0].legend(fontsize=7, ncol=2, loc="lower right")
    n_trials = int(joint["trials"].iloc[0]) if len(joint) else 0
    fig.suptitle(
        f"{title}\n{n_trials:,} simulated trials per n; bands: 95% Clopper-Pearson Monte Carlo intervals", fontsize=10
    )
    fig.savefig(path, dpi=120)
    plt.close(fig)
