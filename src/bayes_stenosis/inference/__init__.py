"""``inference``: public API (re-exported from its modules)."""

from bayes_stenosis.inference.compiled import (
    PROCESS_COMPILES,
    CompileCache,
    CompiledModel,
    compile_nutpie,
    nutpie_sample,
    structure_key,
)
from bayes_stenosis.inference.predictive import chunked_predictive, draws_per_chunk
from bayes_stenosis.inference.sampling import (
    draw_posterior,
    draw_posterior_predictive,
    draw_prior,
    draw_prior_delta,
    draw_prior_variables,
    phases,
    sample,
)
from bayes_stenosis.inference.settings import SamplerSettings

__all__ = [
    "phases",
    "PROCESS_COMPILES",
    "CompileCache",
    "CompiledModel",
    "SamplerSettings",
    "chunked_predictive",
    "compile_nutpie",
    "draw_posterior",
    "draw_posterior_predictive",
    "draw_prior",
    "draw_prior_delta",
    "draw_prior_variables",
    "draws_per_chunk",
    "nutpie_sample",
    "sample",
    "structure_key",
]
