"""``inference``: public API (re-exported from its modules)."""

from bayes_stenosis.inference.sampling import (
    SamplerSettings,
    compile_nutpie,
    nutpie_sample,
    sample,
)

__all__ = [
    "SamplerSettings",
    "compile_nutpie",
    "nutpie_sample",
    "sample",
]
