"""``model.inputs``: the flagship's assumptions, prior sets resolved from the smallest margin, and a
missing reference SD named by outcome and key. No sampling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayes_stenosis.errors import InputError
from bayes_stenosis.model import (
    prepare_inputs,
    resolve_prior,
)
from bayes_stenosis.spec import load_spec
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import statement_row, write_study


def test_flagship_assumptions(flagship):
    _, _, inputs = flagship
    # per-arm n unknown: the randomised total 39 is split equally
    assert inputs.arm_sizes == {"mesotherapy": 19.5, "caudal_esi": 19.5}
    np.testing.assert_allclose(inputs.margin_std, [15 / 20, 10 / 16, 15 / 20, 5 / 5])
    assert set(inputs.evidence_by_cell.evidence) == {"threshold"}


def test_prior_sets_resolve_from_the_smallest_margin(flagship):
    _, spec, inputs = flagship
    m = 10 / 16  # ODI has the smallest standardized margin
    small = resolve_prior(spec, "small_difference", inputs)
    assert small.mu == 0 and small.sigma == pytest.approx(m / stats.norm.ppf(0.975))
    # 5 % prior mass beyond the margin, by construction
    assert 2 * stats.norm.sf(m, 0, small.sigma) == pytest.approx(0.05)
    # sceptical of equivalence: half the prior mass beyond the margin, P(|Delta| < m) = 0.5
    neutral = resolve_prior(spec, "sceptical_of_equivalence", inputs)
    assert neutral.mu == 0 and 2 * stats.norm.sf(m, 0, neutral.sigma) == pytest.approx(0.5)
    with pytest.raises(InputError, match="renamed 'small_difference'"):
        resolve_prior(spec, "sceptical", inputs)
    enthusiastic = resolve_prior(spec, "enthusiastic", inputs)
    assert enthusiastic.mu == pytest.approx(-m)  # favours the new arm: lower is better
    assert stats.norm.sf(0, enthusiastic.mu, enthusiastic.sigma) == pytest.approx(0.05)
    with pytest.raises(InputError, match="unknown prior set"):
        resolve_prior(spec, "nonsense", inputs)


def test_missing_reference_sd_names_the_outcome_and_key(tmp_path):
    folder = write_study(
        tmp_path / "s",
        outcomes={"ODI": {"instrument": "ODI", "margin": 10, "reference_sd": None}},
        rows={"thresholds.csv": [statement_row()]},
    )
    spec, _ = load_spec()
    with pytest.raises(InputError) as err:
        prepare_inputs(load_study(folder), spec)
    message = str(err.value)
    assert "study.toml" in message and "outcomes.ODI.reference_sd" in message and "ODI" in message
