"""The figure of a sweep: one heat map of P(equivalence) per margin set, fits x cells."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["heat_map", "plot_sensitivity", "sensitivity_figure"]

_DECISION_MARK = {"equivalent": "E", "not equivalent": "N", "undecided": ""}


def plot_sensitivity(table: pd.DataFrame, path: Path, title: str = "sensitivity") -> None:
    """Write :func:`sensitivity_figure` to ``path`` (PNG)."""
    import matplotlib.pyplot as plt

    fig = sensitivity_figure(table, title)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def sensitivity_figure(table: pd.DataFrame, title: str = "sensitivity"):
    """Small multiples, one heat map per margin set: rows = fits (prior set x correlation), columns =
    cells (week x outcome) and the joint rows; colour = P(equivalence); a letter = a decision
    (E equivalent, N not equivalent); a black frame = the decision differs from the reference fit
    under the study margins; a red row label = that fit failed its diagnostics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = table[table["scope"].isin(["cell", "joint_time"])].copy()
    cells["column"] = [
        f"wk {t:g}\n{o if s == 'cell' else 'all'}"
        for t, o, s in zip(cells["time"], cells["outcome"], cells["scope"], strict=True)
    ]
    col_order = list(dict.fromkeys(cells.sort_values(["time", "scope"], kind="stable")["column"]))
    row_order = list(dict.fromkeys(table["configuration"]))
    msets = list(dict.fromkeys(table["margin_set"]))
    status = table.drop_duplicates("configuration").set_index("configuration")["diagnostics_status"]
    threshold = float(table["decision_threshold"].iloc[0])
    is_cell = table["scope"] == "cell"
    n_flips, n_cells = int((is_cell & table["decision_differs_from_reference"]).sum()), int(is_cell.sum())

    width = max(6.0, 0.62 * len(col_order) * len(msets) + 3.5)
    height = max(3.0, 0.38 * len(row_order) + 2.2)
    fig, axes = plt.subplots(1, len(msets), figsize=(width, height), sharey=True, squeeze=False)
    # margins in inches, not fractions: matplotlib's default top (12 % of the height) left a band of
    # inches between the title and the panels of a tall grid (53 fits: 2.6 in)
    fig.subplots_adjust(top=1 - 0.8 / height, bottom=0.6 / height)
    image = None
    for ax, mset in zip(axes[0], msets, strict=True):
        image = heat_map(ax, cells[cells["margin_set"] == mset], row_order, col_order)
        ax.set_title(f"margins: {mset}", fontsize=9)
    for label in axes[0][0].get_yticklabels():
        if status.get(label.get_text()) == "fail":
            label.set_color("red")
    fig.colorbar(image, ax=axes[0].tolist(), fraction=0.025, pad=0.01, label="P(|delta| < margin)")
    verdict_text = (
        "no decision differs from the reference fit"
        if n_flips == 0
        else f"{n_flips} of {n_cells} cell decisions (every fit and margin set) differ from the reference fit's "
        "under the study margins (framed)"
    )
    failed = int((status == "fail").sum())
    fig.suptitle(
        f"{title}\n{verdict_text}; E = equivalent, N = not equivalent (rule threshold {threshold:g}); "
        f"{failed} of {len(status)} fits failed diagnostics (red labels)",
        fontsize=9,
        y=1 - 0.05 / height,
        va="top",
    )
    return fig


def heat_map(ax, sub: pd.DataFrame, row_order: list[str], col_order: list[str]):
    """One margin set's panel: P(equivalence) per fit (row) and cell (column), a letter per decision, a
    frame where the decision differs from the reference fit's; returns the image (for the colour bar)."""
    from matplotlib.patches import Rectangle

    grid = sub.pivot_table(index="configuration", columns="column", values="prob_equivalence", aggfunc="first")
    grid = grid.reindex(index=row_order, columns=col_order)
    image = ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    lookup = sub.set_index(["configuration", "column"])
    for i, cfg in enumerate(row_order):
        for j, col in enumerate(col_order):
            if (cfg, col) not in lookup.index:
                continue
            rec = lookup.loc[(cfg, col)]
            p = float(rec["prob_equivalence"])
            mark = _DECISION_MARK.get(rec["decision"], "?")
            ax.text(
                j,
                i,
                f"{p:.2f}{(' ' + mark) if mark else ''}",
                ha="center",
                va="center",
                fontsize=6.5,
                color="black" if p > 0.6 else "white",
            )
            if bool(rec["decision_differs_from_reference"]):
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
    ax.set_xticks(range(len(col_order)), col_order, fontsize=7)
    ax.set_yticks(range(len(row_order)), row_order, fontsize=7)
    return image
