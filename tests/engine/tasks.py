"""Trial tasks for the engine's tests (a module of its own: the workers unpickle them by name)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NormalMeans:
    """A trial: the mean of ``size`` standard normals, at each of two design points."""

    size: int = 20
    fail_on: int | None = None  # a trial index that raises: a run killed part-way
    fingerprint: str = "normal-means-v1"

    def __call__(self, trial: int, rng: np.random.Generator) -> list[dict]:
        if trial == self.fail_on:
            raise RuntimeError(f"trial {trial} killed")
        x = rng.standard_normal(self.size)
        return [{"n": k, "mean": float(x[:k].mean())} for k in (self.size // 2, self.size)]
