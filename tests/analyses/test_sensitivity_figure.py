"""``analyses.sensitivity.figure``: the sweep's figure frames the decisions that differ from the reference,
marks failed fits, and keeps its title next to the panels however many fits there are."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.patches import Rectangle

from bayes_stenosis.analyses import plot_sensitivity
from bayes_stenosis.analyses.sensitivity.figure import sensitivity_figure


def _table(probabilities: dict[str, float]) -> pd.DataFrame:
    rows = []
    for cfg, p in probabilities.items():
        for scope in ("cell", "joint_time"):
            rows.append(
                {
                    "configuration": cfg,
                    "margin_set": "study",
                    "scope": scope,
                    "time": 4.0,
                    "outcome": "ODI" if scope == "cell" else "all",
                    "prob_equivalence": p,
                    "decision": "equivalent" if p > 0.975 else "undecided",
                    "decision_differs_from_reference": p < 0.975,
                    "decision_threshold": 0.975,
                    "diagnostics_status": "ok" if p > 0.9 else "fail",
                }
            )
    return pd.DataFrame(rows)


def test_figure_frames_flipped_decisions_and_marks_failed_fits(tmp_path):
    table = _table({"a | rho uncertain": 0.99, "b | rho uncertain": 0.5})
    fig = sensitivity_figure(table)
    panel = fig.axes[0]
    frames = [p for p in panel.patches if isinstance(p, Rectangle) and not p.get_fill()]
    assert len(frames) == int(table["decision_differs_from_reference"].sum()) == 2  # fit b's two cells
    assert {tuple(f.get_xy()) for f in frames} == {(-0.5, 0.5), (0.5, 0.5)}  # row 1 = fit b
    labels = {t.get_text(): t.get_color() for t in panel.get_yticklabels()}
    assert labels["b | rho uncertain"] == "red" and labels["a | rho uncertain"] != "red"
    # the count says what it counts: cell rows (not the joint rows) of every fit and margin set
    assert "1 of 2 cell decisions (every fit and margin set) differ" in fig.texts[0].get_text()
    texts = sorted(t.get_text() for t in panel.texts)
    assert texts == ["0.50", "0.50", "0.99 E", "0.99 E"]
    plt.close(fig)
    plot_sensitivity(table, tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("n_fits", [2, 53])
def test_the_title_sits_next_to_the_panels_however_tall_the_grid(n_fits):
    """The room above the panels is fixed in inches (title and panel titles). With matplotlib's default
    (the top 12 % of the figure) a 53-fit grid had 2.6 inches of blank band under its title."""
    fig = sensitivity_figure(_table({f"fit {k} | rho uncertain": 0.99 for k in range(n_fits)}))
    height = fig.get_figheight()
    gap_inches = (1 - fig.axes[0].get_position().y1) * height
    assert gap_inches <= 0.8 + 1e-9
    title = fig.texts[0]  # the suptitle, top-aligned just under the figure's top edge
    assert title.get_va() == "top" and (1 - title.get_position()[1]) * height <= 0.1
    plt.close(fig)
