"""The forest plot of a synthesis: each study's likelihood and shrunken effect, the pooled effect, a new
study's prediction interval, and the equivalence margin; for a multivariate synthesis one panel per cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bayes_stenosis.analyses.synthesis.combine import Synthesis
from bayes_stenosis.analyses.synthesis.joint import MultivariateSynthesis

__all__ = ["forest_panels", "forest_plot"]


def forest_plot(synthesis: Synthesis, path: Path) -> None:
    """Rows, top to bottom: each study (grey: its likelihood, mean +- 1.96 SD; black: its shrunken effect,
    95 % interval), the pooled effect (diamond) and a new study's effect (the prediction interval); the
    shaded band is the margin, whose P(inside) is printed per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rec = synthesis.record()
    rows = []
    for s in rec["studies"]:
        lik, sh = s["likelihood"], s["shrunken"]
        label = f"{s['study']}\n{s['cell']['outcome']}, week {s['cell']['time']:g} ({lik['method'].replace('_', ' ')})"
        rows.append((label, lik, sh))
    n = len(rows)
    fig, ax = plt.subplots(figsize=(8.5, 1.0 + 0.75 * (n + 2)))
    m = synthesis.margin
    ax.axvspan(-m, m, color="tab:green", alpha=0.12, label=f"margin +-{m:.3g}")
    ax.axvline(0, color="grey", lw=0.8)
    ys = list(range(n + 2, 2, -1))
    for y, (_, lik, sh) in zip(ys, rows, strict=True):
        ax.errorbar(lik["mean"], y + 0.15, xerr=1.96 * lik["sd"], fmt="s", color="grey", ms=4, capsize=3)
        lo, hi = sh["interval_low"], sh["interval_high"]
        ax.errorbar(
            sh["mean"], y - 0.15, xerr=[[sh["mean"] - lo], [hi - sh["mean"]]], fmt="o", color="black", ms=4, capsize=3
        )
        ax.text(1.02, y, f"{sh['prob_equivalence']:.3f}", transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    pooled, new = rec["pooled"], rec["new_study"]
    d = 0.25
    ax.fill(
        [pooled["interval_low"], pooled["mean"], pooled["interval_high"], pooled["mean"]],
        [2, 2 + d, 2, 2 - d],
        color="tab:blue",
    )
    ax.errorbar(
        new["mean"],
        1,
        xerr=[[new["mean"] - new["interval_low"]], [new["interval_high"] - new["mean"]]],
        fmt="D",
        color="tab:red",
        ms=4,
        capsize=3,
    )
    for y, p in ((2, pooled["prob_equivalence"]), (1, new["prob_equivalence"])):
        ax.text(1.02, y, f"{p:.3f}", transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    ax.text(1.02, n + 2.7, "P(inside)", transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    ax.set_yticks([*ys, 2, 1])
    ax.set_yticklabels([r[0] for r in rows] + ["pooled effect (mu)", "new study (prediction)"], fontsize=8)
    ax.set_ylim(0.3, n + 3)
    tau = rec["tau"]
    ax.set_xlabel(f"{synthesis.comparison}, change from baseline ({synthesis.unit}; {synthesis.scale_key} scale)")
    ax.set_title(
        f"grey: each study's likelihood (+-1.96 SD); black: shrunken effect (95 % interval)\n"
        f"tau median {tau['median']:.2f} (95 % {tau['interval_low']:.2f}-{tau['interval_high']:.2f}); "
        f"{synthesis.tau_prior.text()}; {synthesis.mu_prior.text()}",
        fontsize=8,
    )
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def forest_panels(synthesis: MultivariateSynthesis, path: Path) -> None:
    """One panel per cell of a multivariate synthesis: each study's likelihood of the cell (the marginal of
    its joint one, mean +- 1.96 SD), the pooled effect (diamond), a new study's prediction interval and the
    cell's margin (shaded), with P(inside) per row; the joint P(all cells inside) in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rec = synthesis.record()
    k = len(synthesis.cells)
    studies = [g[0].study for g in synthesis.inputs]
    n = len(studies)
    fig, axes = plt.subplots(1, k, figsize=(4.2 * k, 1.2 + 0.55 * (n + 2)), sharey=True, squeeze=False)
    for j, ax in enumerate(axes[0]):
        m = synthesis.margins[j]
        ax.axvspan(-m, m, color="tab:green", alpha=0.12)
        ax.axvline(0, color="grey", lw=0.8)
        for i, lik in enumerate(synthesis.likelihoods):
            if j in lik.cells:
                pos = int(np.flatnonzero(lik.cells == j)[0])
                ax.errorbar(lik.mean[pos], n + 2 - i, xerr=1.96 * np.sqrt(lik.cov[pos, pos]), fmt="s", color="grey")
        cell = synthesis.numbers["cells"][j]
        for y, key, colour in ((2, "pooled", "tab:blue"), (1, "new_study", "tab:red")):
            x = cell[key]
            err = [[x["mean"] - x["interval_low"]], [x["interval_high"] - x["mean"]]]
            ax.errorbar(x["mean"], y, xerr=err, fmt="D", color=colour, ms=5, capsize=3)
            ax.text(x["interval_high"], y + 0.25, f"P={x['prob_equivalence']:.3f}", fontsize=7)
        ax.set_title(f"{synthesis.labels[j]} (margin +-{m:.3g})", fontsize=9)
        ax.set_xlabel(f"{synthesis.unit}; {synthesis.scale_key} scale", fontsize=8)
    axes[0][0].set_yticks([*range(n + 2, 2, -1), 2, 1])
    axes[0][0].set_yticklabels([*studies, "pooled effect (mu)", "new study (prediction)"], fontsize=8)
    axes[0][0].set_ylim(0.3, n + 2.7)
    joint = rec["joint_prob_equivalence"]
    fig.suptitle(
        f"{synthesis.comparison}: P(all cells inside) pooled {joint['pooled']['prob']:.3f}, new study "
        f"{joint['new_study']['prob']:.3f}\ngrey: each study's likelihood (+-1.96 SD); "
        f"{synthesis.tau_prior.text()}; {synthesis.r_prior.text(k)}; {synthesis.mu_prior.text()} per cell",
        fontsize=8,
        y=1.04,
    )
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
