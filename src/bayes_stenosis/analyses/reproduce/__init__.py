r"""Frequentist reproduction of the published tests, from the entered data (``bayes-stenosis reproduce``).

For every published statement the table gives what was printed, what the entered numbers give, and
whether the two agree within a stated tolerance; where the data do not allow a recomputation the
row says why. It catches data-entry errors (an SE entered as an SD changes a recomputed p by a
factor of :math:`\sqrt n` in the statistic) and shows where "P>0.05" and equivalence part ways.

Modules: ``frequentist`` (the tests: t, Welch, paired t, TOST, an ANCOVA approximation), ``compare``
(the rounding tolerance and whether a recomputed p agrees with a published one), ``rows`` (the columns),
one module per kind of evidence (``arm_summary``, ``contrast``, ``statements``: threshold statements
without data), ``table`` (:func:`reproduce_table`) and ``writing`` (the CSV, the markdown, the folder).
"""

from bayes_stenosis.analyses.reproduce.compare import common_halves, decimals, half_unit, p_interval
from bayes_stenosis.analyses.reproduce.frequentist import (
    TOST_ALPHA,
    ancova_approximation,
    one_sample,
    tost,
    two_sample,
)
from bayes_stenosis.analyses.reproduce.rows import COLUMNS
from bayes_stenosis.analyses.reproduce.table import reproduce_table
from bayes_stenosis.analyses.reproduce.writing import ReproduceResult, markdown, run_reproduce, write_reproduce

__all__ = [
    "COLUMNS",
    "TOST_ALPHA",
    "ReproduceResult",
    "ancova_approximation",
    "common_halves",
    "decimals",
    "half_unit",
    "markdown",
    "one_sample",
    "p_interval",
    "reproduce_table",
    "run_reproduce",
    "tost",
    "two_sample",
    "write_reproduce",
]
