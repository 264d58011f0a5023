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


def test_each_fit_records_how_its_threshold_statements_entered_the_likelihood():
    """The flagship's statements are one joint event under a change-score test; a fit assuming a test on
    follow-up scores or an ANCOVA treats them per statement, and the sweep's tables must say so."""
    from types import SimpleNamespace

    from bayes_stenosis.analyses.sensitivity.configs import FitConfig
    from bayes_stenosis.analyses.sensitivity.tables import statement_treatment
    from bayes_stenosis.model import prepare_inputs
    from bayes_stenosis.spec import load_spec
    from bayes_stenosis.study import load_study

    spec, _ = load_spec("default")
    study = load_study("farpour2022")
    treatments = {}
    for test in ("spec", "follow_up", "ancova"):
        fit_spec = FitConfig("weakly_informative", "uncertain", between_test=test).spec(spec)
        fitted = SimpleNamespace(inputs=prepare_inputs(study, fit_spec), spec=fit_spec)
        treatments[test] = statement_treatment(fitted)
    assert treatments == {"spec": "joint", "follow_up": "independent", "ancova": "independent"}


def test_the_study_margin_set_reuses_the_fits_own_decision_table(tmp_path):
    """Under the study's own margins a sweep takes the fit's decision table instead of computing it again: it
    must be the table computed afresh; another margin set is computed with its own margins."""
    import numpy as np

    from bayes_stenosis import decisions as dec
    from bayes_stenosis.analyses.sensitivity.tables import margin_set_table
    from bayes_stenosis.run import evidence_mask
    from bayes_stenosis.testing import synthetic_fit, write_study

    row = {"measure": "change", "direction": "new_minus_reference", "estimate": -1, "se": 3}
    study = write_study(
        tmp_path / "study",
        outcomes={"ODI": {"instrument": "ODI", "scale_max": 100, "margin": 10, "reference_sd": 16}},
        follow_up=(4.0, 8.0),
        rows={"contrasts.csv": [row | {"outcome": "ODI", "time": t} for t in (4, 8)]},
    )
    fitted = synthetic_fit(study, delta_sd=0.3)
    info = {"configuration": "test", "seed": 1}
    direction = {"ODI": fitted.inputs.direction[0]}
    rule = dec.DecisionRule(threshold=fitted.spec.decision.threshold)
    for name, margin in (("study", 10.0), ("narrow", 4.0)):
        table = margin_set_table(fitted, name, {"ODI": (margin, "test")}, info)
        fresh = dec.decision_table(
            fitted.idata.posterior["delta_natural"],
            {"ODI": margin},
            direction,
            rule,
            prior_delta_natural=fitted.prior_delta_natural,
            evidence=evidence_mask(fitted.inputs),
        )
        fresh = fresh[fresh["scope"] != "any_beyond_margin"].reset_index(drop=True)
        numbers = fresh.select_dtypes("number").columns
        pd.testing.assert_frame_equal(table[numbers].reset_index(drop=True), fresh[numbers])
        assert table["decision"].fillna("").tolist() == fresh["decision"].fillna("").tolist()
    # the two margin sets give different probabilities: the narrow margin is computed, not copied
    narrow = margin_set_table(fitted, "narrow", {"ODI": (4.0, "test")}, info)
    study_table = margin_set_table(fitted, "study", {"ODI": (10.0, "test")}, info)
    assert np.all(narrow["prob_equivalence"].to_numpy() < study_table["prob_equivalence"].to_numpy())
