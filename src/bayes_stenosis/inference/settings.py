"""Sampler settings: what the sampler does, recorded in the manifest, and the one seed's child streams.

The run seed is split with :class:`numpy.random.SeedSequence` into independent streams for the prior
predictive, the posterior (NUTS) and the posterior predictive, so the same seed gives the same numbers
and no step shares a stream with another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_stenosis.spec import Sampler


@dataclass(frozen=True)
class SamplerSettings:
    """What the sampler does; recorded in the manifest."""

    name: str
    chains: int
    draws: int
    tune: int
    target_accept: float
    seed: int
    prior_draws: int = 1000

    @classmethod
    def from_spec(cls, sampler: Sampler, **overrides) -> SamplerSettings:
        values = sampler.model_dump()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def seeds(self) -> dict[str, int]:
        """Independent child seeds derived from the one run seed."""
        children = np.random.SeedSequence(self.seed).spawn(3)
        names = ("prior_predictive", "posterior", "posterior_predictive")
        return {n: int(c.generate_state(1)[0]) for n, c in zip(names, children, strict=True)}
