"""The closed schema of a study folder: ``study.toml`` as pydantic models, the evidence CSVs as columns.

A study folder holds ``study.toml`` (design, arms, outcomes, time points, each number with a source)
and one CSV per evidence level present :

============================  =================================================================
file                          one row per
============================  =================================================================
``ipd.csv``                   patient x outcome x time: ``patient, arm, outcome, time, value``
``arm_summaries.csv``         arm x outcome x time: ``n, mean, sd`` of the score or the change
``contrasts.csv``             outcome x follow-up time: a between-arm difference with CI/SE/p
``thresholds.csv``            a statement "P<alpha" / "P>alpha", between arms or within an arm
============================  =================================================================

Every CSV has a ``source`` column. Empty cells mean "not reported" and are never filled in:
an ``arm_summaries.csv`` row with ``n``, ``mean`` and ``sd`` all empty is a placeholder for a
number that is not public; rows with only some of them are kept as facts and reported as
incomplete. Unknown keys and columns are errors. Every error is an :class:`InputError` naming
the file, the 1-based row (the header is row 1, as a spreadsheet shows it) and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EVIDENCE_FILES = {
    "ipd": "ipd.csv",
    "arm_summary": "arm_summaries.csv",
    "contrast": "contrasts.csv",
    "threshold": "thresholds.csv",
}


class _Closed(BaseModel):
    # inf/nan are never valid study numbers (a margin or SD of inf would pass gt=0). Strict: a TOML
    # string is never turned into a number or a boolean (margin = "10" is a typo to report, not 10),
    # nor a float into a count (n_randomised = 20.0); an integer is still a valid float.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class KeyRuleError(ValueError):
    """A cross-key rule broken by one key: the error is reported at ``<table>.<key>``."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class StudyInfo(_Closed):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    citation: str
    doi: str = ""
    design: Literal["parallel"] = "parallel"
    n_randomised_total: int | None = Field(default=None, gt=0)
    n_randomised_total_source: str = ""
    allocation: str = ""
    simulated: bool = False
    pages_read: list[str] = []
    notes: list[str] = []

    @model_validator(mode="after")
    def _sourced(self) -> StudyInfo:
        if self.n_randomised_total is not None and not self.n_randomised_total_source:
            raise KeyRuleError("n_randomised_total_source", "n_randomised_total needs n_randomised_total_source")
        return self


class Arm(_Closed):
    label: str
    role: Literal["new", "reference"]
    n_randomised: int | None = Field(default=None, gt=0)
    n_source: str = ""

    @model_validator(mode="after")
    def _sourced(self) -> Arm:
        if self.n_randomised is not None and not self.n_source:
            raise KeyRuleError("n_source", "n_randomised needs n_source")
        return self


class Outcome(_Closed):
    label: str
    instrument: Literal["VAS", "NRS", "ODI", "RMDQ", "QBPDS", "other"]
    unit: str
    scale_min: float
    scale_max: float
    scale_source: str
    direction: Literal["lower_is_better", "higher_is_better"]
    margin: float | None = Field(default=None, gt=0)
    margin_source: str = ""
    reference_sd: float | None = Field(default=None, gt=0)
    reference_sd_source: str = ""

    @model_validator(mode="after")
    def _checks(self) -> Outcome:
        if self.scale_max <= self.scale_min:
            raise KeyRuleError("scale_max", "scale_max must be greater than scale_min")
        if self.margin is not None and not self.margin_source:
            raise KeyRuleError("margin_source", "margin needs margin_source")
        if self.reference_sd is not None and not self.reference_sd_source:
            raise KeyRuleError("reference_sd_source", "reference_sd needs reference_sd_source")
        return self


class Times(_Closed):
    unit: Literal["weeks"] = "weeks"
    baseline: float = 0
    follow_up: list[float] = Field(min_length=1)
    source: str

    @model_validator(mode="after")
    def _checks(self) -> Times:
        if len(set(self.follow_up)) != len(self.follow_up):
            raise KeyRuleError("follow_up", "follow_up times must be distinct")
        if any(t <= self.baseline for t in self.follow_up):
            raise KeyRuleError("follow_up", "follow_up times must be after baseline")
        return self


class StudyFile(_Closed):
    schema_version: Literal[1] = 1
    study: StudyInfo
    arms: dict[str, Arm]
    outcomes: dict[str, Outcome]
    times: Times

    @model_validator(mode="after")
    def _roles(self) -> StudyFile:
        roles = sorted(a.role for a in self.arms.values())
        if roles != ["new", "reference"]:
            raise ValueError("a study needs exactly two arms, one with role 'new' and one 'reference'")
        for key in [*self.arms, *self.outcomes]:
            if not key.replace("_", "").isalnum():
                raise ValueError(f"ids must be letters, digits and '_' (got {key!r})")
        return self


@dataclass(frozen=True)
class Column:
    name: str
    kind: Literal["str", "float", "int", "choice"]
    required: bool = True  # the column must exist in the header
    needs_value: bool = False  # every row must fill it
    choices: tuple[str, ...] = ()


_SOURCE = Column("source", "str", needs_value=True)
_NOTE = Column("note", "str", required=False)

SCHEMAS: dict[str, tuple[Column, ...]] = {
    "ipd": (
        Column("patient", "str", needs_value=True),
        Column("arm", "str", needs_value=True),
        Column("outcome", "str", needs_value=True),
        Column("time", "float", needs_value=True),
        Column("value", "float"),  # empty = missing follow-up
        _SOURCE,
        _NOTE,
    ),
    "arm_summary": (
        Column("arm", "str", needs_value=True),
        Column("outcome", "str", needs_value=True),
        Column("time", "float", needs_value=True),
        Column("kind", "choice", needs_value=True, choices=("score", "change")),
        Column("n", "int"),
        Column("mean", "float"),
        Column("sd", "float"),
        _SOURCE,
        _NOTE,
    ),
    "contrast": (
        Column("outcome", "str", needs_value=True),
        Column("time", "float", needs_value=True),
        Column(
            "measure",
            "choice",
            needs_value=True,
            choices=("change", "follow_up", "ancova"),
        ),
        Column(
            "direction",
            "choice",
            needs_value=True,
            choices=("new_minus_reference", "reference_minus_new"),
        ),
        Column("estimate", "float", needs_value=True),
        Column("ci_low", "float", required=False),
        Column("ci_high", "float", required=False),
        Column("ci_level", "float", required=False),
        Column("se", "float", required=False),
        Column("p_value", "float", required=False),
        Column("df", "float", required=False),
        _SOURCE,
        _NOTE,
    ),
    "threshold": (
        Column("outcome", "str", needs_value=True),
        Column("time", "float", needs_value=True),
        Column("comparison", "choice", needs_value=True, choices=("between", "within")),
        Column("arm", "str"),
        Column("relation", "choice", needs_value=True, choices=("<", ">")),
        Column("alpha", "float", needs_value=True),
        Column(
            "direction",
            "choice",
            choices=("favours_new", "favours_reference", "improvement", "worsening"),
        ),
        Column(
            "test",
            "choice",
            needs_value=True,
            choices=("two_sample_t", "welch_t", "paired_t", "normal"),
        ),
        Column("p_value", "float", required=False),
        _SOURCE,
        _NOTE,
    ),
}
