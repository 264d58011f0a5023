"""``diagnostics.verdict``: what makes a run fail (no sampling: hand-built tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_stenosis.diagnostics import verdict
from bayes_stenosis.spec import load_spec

LIMITS = load_spec("default")[0].diagnostics


def _sampler(chains: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "chain": np.arange(chains),
            "draws": 1000,
            "divergences": 0,
            "ebfmi": 1.0,
            "treedepth_saturation_fraction": 0.0,
        }
    )


def _params(r_hat: float, ess: float) -> pd.DataFrame:
    return pd.DataFrame({"quantity": ["delta[4, ODI]"], "r_hat": [r_hat], "ess_bulk": [ess], "ess_tail": [ess]})


def test_a_healthy_run_is_ok_and_a_run_that_cannot_be_checked_fails():
    assert verdict(_params(1.001, 2000), _sampler(4), LIMITS).status == "ok"
    one_chain = verdict(_params(np.nan, 900), _sampler(1), LIMITS)  # R-hat needs two chains
    assert one_chain.status == "fail" and any("not checkable" in r for r in one_chain.reasons)
    too_short = verdict(_params(np.nan, np.nan), _sampler(2), LIMITS)  # fewer than 4 draws per chain
    assert too_short.status == "fail"
    assert verdict(_params(1.05, 2000), _sampler(4), LIMITS).status == "fail"


def _named(quantity: str, r_hat: float) -> pd.DataFrame:
    return pd.DataFrame({"quantity": [quantity], "r_hat": [r_hat], "ess_bulk": [2000.0], "ess_tail": [2000.0]})


def test_a_failure_names_the_component_and_what_to_do():
    """Issue 22: a fit that does not converge says which component and what to do about it."""
    boundary = verdict(_named("ipd_patient_sd[ODI]", 1.04), _sampler(4), LIMITS)
    assert boundary.status == "fail"
    (reason,) = boundary.reasons
    assert "ipd_patient_sd[ODI]" in reason and 'covariance = "unstructured"' in reason
    pooling = verdict(_named("tau", 1.03), _sampler(4), LIMITS).reasons[0]
    assert "--model independent" in pooling
    other = verdict(_named("delta[4, ODI]", 1.03), _sampler(4), LIMITS).reasons[0]
    assert "more --draws and --tune" in other
    divergent = _sampler(4).assign(divergences=[0, 3, 0, 0])
    (reason,) = verdict(_named("delta[4, ODI]", 1.001), divergent, LIMITS).reasons
    assert reason.startswith("3 divergent transitions") and "target_accept" in reason
