"""``analyses.sensitivity.tables``: the robustness table (the range over the fits, and which break
equivalence)."""

from __future__ import annotations

import pandas as pd


def test_robustness_table_reports_the_range_and_who_breaks_equivalence():
    from bayes_stenosis.analyses import robustness_table

    rows = []
    for cfg, p, status in (("ref", 0.98, "ok"), ("a", 0.96, "ok"), ("b", 0.99, "fail")):
        for margin_set, shift in (("study", 0.0), ("methods_lower", -0.3)):
            rows.append(
                {
                    "configuration": cfg,
                    "margin_set": margin_set,
                    "scope": "cell",
                    "time": 4.0,
                    "outcome": "ODI",
                    "evidence": "threshold",
                    "prob_equivalence": p + shift,
                    "decision": "equivalent" if p + shift >= 0.975 else "undecided",
                    "diagnostics_status": status,
                }
            )
    out = robustness_table(pd.DataFrame(rows), "ref").iloc[0]
    # only the study margins count; the other margin set is a separate question
    assert (out["prob_equivalence_reference"], out["decision_reference"]) == (0.98, "equivalent")
    assert (out["prob_equivalence_min"], out["configuration_min"]) == (0.96, "a")
    assert (out["prob_equivalence_max"], out["configuration_max"]) == (0.99, "b")
    assert (out["n_fits"], out["n_equivalent"], out["n_failed_diagnostics"]) == (3, 2, 1)
    assert not out["equivalent_in_every_fit"]
