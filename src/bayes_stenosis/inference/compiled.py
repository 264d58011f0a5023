"""Compiled-model reuse: compile a model structure once, swap its data, sample again.

Studies of one design (same cells, same evidence levels) give models with the same ``pm.Data``
names and shapes (:func:`bayes_stenosis.model.data_values`), so the sampler is compiled once and
each refit only swaps the data (nutpie's ``with_data``): a refit costs its sampling time, not a
compile.
"""

from __future__ import annotations

import time

import pymc as pm

from bayes_stenosis.inference.sampling import SamplerSettings, compile_nutpie, nutpie_sample
from bayes_stenosis.model import data_values


class CompiledModel:
    """One compiled nutpie model, refitted to new data of the same design.

    Parameters
    ----------
    model
        A model of the design (any replicate's); its data are replaced at each :meth:`fit`.
    settings
        Chains, draws, tuning and target acceptance (the seed is given per fit).
    """

    def __init__(self, model: pm.Model, settings: SamplerSettings) -> None:
        self.settings = settings
        start = time.perf_counter()
        self.compiled = compile_nutpie(model)
        self.compile_seconds = time.perf_counter() - start
        self.data_names = set(data_values(model))

    def fit(self, model: pm.Model, seed: int):
        """Sample the compiled design with ``model``'s data."""
        return self.fit_values(data_values(model), seed)

    def fit_values(self, values: dict | None, seed: int):
        """Sample with the data containers set to ``values`` (None: the compiled model's own data)."""
        if values is not None and set(values) != self.data_names:
            raise ValueError("the model's data do not match the compiled design")
        compiled = self.compiled.with_data(**values) if values else self.compiled
        s = self.settings
        return nutpie_sample(
            compiled, chains=s.chains, draws=s.draws, tune=s.tune, seed=seed, target_accept=s.target_accept
        )
