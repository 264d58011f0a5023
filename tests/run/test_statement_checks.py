"""``run.statements``: predictive checks of threshold statements, against the likelihood's own quadrature."""

from __future__ import annotations

import numpy as np
import pytest

import bayes_stenosis as bs
from bayes_stenosis.testing import write_study


def _statement(time, comparison, relation, arm="", direction=""):
    return {
        "outcome": "ODI",
        "time": time,
        "comparison": comparison,
        "arm": arm,
        "relation": relation,
        "alpha": 0.05,
        "direction": direction,
        "test": "two_sample_t" if comparison == "between" else "paired_t",
    }


@pytest.mark.slow
def test_simulated_statements_match_the_likelihood_marginals(tmp_path):
    """Per statement, the share of simulated replicates that come out as reported equals the posterior
    mean of P(event | parameters) from the likelihood's quadrature (``threshold_log_prob``), within 4
    MCSE of the simulation; the whole set is less probable than its least probable statement; the
    run folder keeps the table and the posterior predictive replicate."""
    rows = [
        _statement(4, "between", ">"),
        _statement(8, "between", ">"),
        _statement(4, "within", "<", arm="new_arm", direction="improvement"),
        _statement(8, "within", "<", arm="reference_arm", direction="improvement"),
    ]
    folder = write_study(tmp_path / "s", follow_up=(4.0, 8.0), rows={"thresholds.csv": rows})
    fit = bs.fit_study(folder, seed=3, chains=2, draws=500, tune=500)
    table = fit.statement_checks
    statements = table[table.scope == "statement"]
    assert len(statements) == 4 and statements.prob_reproduced_prior.notna().all()
    marginal = np.exp(fit.idata.posterior["threshold_log_prob"]).mean(("chain", "draw"))
    for rec in statements.to_dict("records"):
        expected = float(marginal.sel(threshold_row=rec["row"]))
        tol = 4 * rec["mcse_prob_reproduced_posterior"] + 1e-3
        assert abs(rec["prob_reproduced_posterior"] - expected) < tol, (rec, expected)
    whole = table[table.scope == "all statements"].iloc[0]
    assert whole.prob_reproduced_posterior <= statements.prob_reproduced_posterior.min()
    assert whole.prob_reproduced_prior <= statements.prob_reproduced_prior.min()
    assert "threshold_event" in fit.idata.posterior_predictive
    assert "log_likelihood" not in fit.idata.groups() or "threshold_event" not in fit.idata.log_likelihood
    folder_out = bs.write_run(fit, tmp_path / "out")
    assert (folder_out / "statement_checks.csv").is_file()
