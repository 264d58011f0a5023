"""``run.priors``: a fit's prior draws made in a forked process are the numbers made in this process."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from bayes_stenosis.inference import SamplerSettings
from bayes_stenosis.inference.background import can_fork, start_in_background
from bayes_stenosis.model import prior_sampling_model
from bayes_stenosis.run.fit import prepare_fit
from bayes_stenosis.run.priors import draw_fit_priors
from bayes_stenosis.testing import statement_row, write_study


@pytest.mark.skipif(not can_fork(), reason="fork is not available on this platform")
def test_prior_draws_in_a_forked_process_equal_those_drawn_here(tmp_path):
    rows = [statement_row()]
    folder = write_study(tmp_path / "s", follow_up=(4.0,), rows={"thresholds.csv": rows})
    prepared = prepare_fit(folder)
    forward = prior_sampling_model(prepared.inputs, prepared.spec, prepared.prior)
    settings = SamplerSettings.from_spec(prepared.spec.sampler, seed=11)
    work = functools.partial(draw_fit_priors, forward, settings, with_prior=True, with_statements=True)
    here = work()
    there = start_in_background(work).result()
    assert set(here.prior.groups()) == set(there.prior.groups())
    for group in here.prior.groups():
        for name, values in getattr(here.prior, group).data_vars.items():
            np.testing.assert_array_equal(values.values, getattr(there.prior, group)[name].values)
    for name, values in here.statements.data_vars.items():
        np.testing.assert_array_equal(values.values, there.statements[name].values)
    np.testing.assert_array_equal(here.delta_natural.values, there.delta_natural.values)
    assert set(there.timings) == {"prior_predictive", "prior_draws_statements", "prior_draws_decisions"}
