"""One random stream per trial, keyed by its index: the same trial gets the same numbers on any worker."""

from __future__ import annotations

import numpy as np


def trial_seed(root_seed: int, trial: int) -> np.random.SeedSequence:
    """The seed of trial ``trial``: child ``trial`` of ``SeedSequence(root_seed)``.

    ``SeedSequence(root, spawn_key=(i,))`` is exactly the ``i``-th child that
    ``SeedSequence(root).spawn`` would return, computed without spawning the ``i - 1`` before it, so a
    batch of trials anywhere in the range gets its streams directly.
    """
    if trial < 0:
        raise ValueError(f"trial index must be >= 0 (got {trial})")
    return np.random.SeedSequence(int(root_seed), spawn_key=(int(trial),))


def trial_rng(root_seed: int, trial: int) -> np.random.Generator:
    """A PCG64 generator on :func:`trial_seed`."""
    return np.random.default_rng(trial_seed(root_seed, trial))
