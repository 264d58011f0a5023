"""``analyses.sensitivity.figure``: the sweep's figure frames the decisions that differ from the reference."""

from __future__ import annotations

import pandas as pd

from bayes_stenosis.analyses import plot_sensitivity


def test_figure_frames_flipped_decisions(tmp_path):
    rows = []
    for cfg, p in (("a | rho uncertain", 0.99), ("b | rho uncertain", 0.5)):
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
    plot_sensitivity(pd.DataFrame(rows), tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 10_000
