"""``inference.sampling``: the sampling as a phase of the command."""

from __future__ import annotations

import contextlib

from bayes_stenosis.inference import SamplerSettings
from bayes_stenosis.inference.sampling import sampling_phase


def test_sampling_is_a_phase_of_the_command_unless_the_sampler_shows_a_bar():
    """In a log (no progress bar) sampling gets its phase line with its duration; in a terminal the sampler's
    own bar shows it and no second display is opened."""
    seen = []

    def phase(message):
        seen.append(message)
        return contextlib.nullcontext()

    settings = SamplerSettings(name="nutpie", chains=4, draws=1500, tune=1000, target_accept=0.98, seed=1)
    with sampling_phase(phase, settings, progress=True):
        pass
    assert seen == []
    with sampling_phase(phase, settings, progress=False):
        pass
    assert seen == ["sampling (nutpie, 4 chains x 1500 draws after 1000 tuning steps)"]


def test_prior_draws_print_no_pymc_sampling_line():
    """The fit prints a phase line per step; PyMC's "Sampling: [...]" log line of each forward draw (three per
    fit, from the background process) would interleave with them."""
    import logging

    import pymc as pm

    from bayes_stenosis.inference.sampling import draw_prior_variables

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # as pymc sets it in a CLI process (under pytest the root logger decides)
    try:
        with pm.Model() as model:
            pm.Normal("x")
        drawn = draw_prior_variables(model, ["x"], draws=10, seed=1)
        with model:
            pm.sample_prior_predictive(draws=10, random_seed=1)  # the line this test would catch
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert drawn["x"].shape == (1, 10)
    messages = [r.getMessage() for r in records]
    assert sum(m.startswith("Sampling:") for m in messages) == 1, messages
