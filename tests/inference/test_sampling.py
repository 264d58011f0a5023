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
