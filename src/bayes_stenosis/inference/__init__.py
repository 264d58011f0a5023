"""``inference``: public API (re-exported from its modules)."""

from bayes_stenosis.inference.compiled import CompiledModel
from bayes_stenosis.inference.sampling import (
    SamplerSettings,
    compile_nutpie,
    nutpie_sample,
    sample,
)

__all__ = [
    "CompiledModel",
    "SamplerSettings",
    "compile_nutpie",
    "nutpie_sample",
    "sample",
]
