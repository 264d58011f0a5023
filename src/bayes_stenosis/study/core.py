"""Study folders: the closed schema of ``study.toml`` and the evidence CSVs, and their loader.

A study folder holds ``study.toml`` (design, arms, outcomes, time points, each number with a source)
and one CSV per evidence level present (DESIGN section 2):

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

import csv
import hashlib
import io
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bayes_stenosis import stats as conversions
from bayes_stenosis.errors import InputError
from bayes_stenosis.resources import resolve_study

EVIDENCE_FILES = {
    "ipd": "ipd.csv",
    "arm_summary": "arm_summaries.csv",
    "contrast": "contrasts.csv",
    "threshold": "thresholds.csv",
}

# ---------------------------------------------------------------------------------------------
# study.toml
# ---------------------------------------------------------------------------------------------


class _Closed(BaseModel):
    # inf/nan are never valid study numbers (a margin or SD of inf would pass gt=0)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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


# ---------------------------------------------------------------------------------------------
# CSV schemas
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# The loaded study
# ---------------------------------------------------------------------------------------------


@dataclass
class Study:
    """A validated study: design from ``study.toml`` and one typed frame per evidence level.

    Frames carry a ``row`` column with the 1-based row number in their CSV, so later layers can
    point back at the file. Dimensions are named ``arm``, ``time`` (follow-up times only) and
    ``outcome``; see :attr:`coords`.
    """

    folder: Path
    meta: StudyFile
    evidence: dict[str, pd.DataFrame]
    files: dict[str, Path] = field(default_factory=dict)

    # --- design ---------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.meta.study.id

    @property
    def arms(self) -> list[str]:
        """Arm ids, reference arm first."""
        return [self.reference_arm, self.new_arm]

    @property
    def new_arm(self) -> str:
        return next(k for k, a in self.meta.arms.items() if a.role == "new")

    @property
    def reference_arm(self) -> str:
        return next(k for k, a in self.meta.arms.items() if a.role == "reference")

    @property
    def outcomes(self) -> list[str]:
        return list(self.meta.outcomes)

    @property
    def times(self) -> list[float]:
        """Follow-up times (the baseline is ``meta.times.baseline``)."""
        return list(self.meta.times.follow_up)

    @property
    def coords(self) -> dict[str, list]:
        return {"arm": self.arms, "time": self.times, "outcome": self.outcomes}

    @property
    def simulated(self) -> bool:
        return self.meta.study.simulated

    def outcome(self, name: str) -> Outcome:
        return self.meta.outcomes[name]

    def arm_sizes(self) -> dict[str, float | None]:
        """Randomised n per arm where known, else ``None``."""
        return {k: a.n_randomised for k, a in self.meta.arms.items()}

    # --- evidence ---------------------------------------------------------------------------
    def usable_arm_summaries(self) -> pd.DataFrame:
        """Arm-summary rows with ``n``, ``mean`` and ``sd`` all present."""
        df = self.evidence["arm_summary"]
        return df[df[["n", "mean", "sd"]].notna().all(axis=1)]

    def incomplete_arm_summaries(self) -> pd.DataFrame:
        """Rows that report some but not all of ``n``, ``mean``, ``sd`` (kept, not used)."""
        df = self.evidence["arm_summary"]
        filled = df[["n", "mean", "sd"]].notna()
        return df[filled.any(axis=1) & ~filled.all(axis=1)]

    def arm_summary_cells(self) -> set[tuple[float, str]]:
        """(time, outcome) follow-up cells whose change can be formed from usable arm summaries
        in *both* arms (a change row, or a baseline and a follow-up score row)."""
        usable = self.usable_arm_summaries()
        cells = set()
        base = self.meta.times.baseline
        for t in self.times:
            for o in self.outcomes:
                ok = True
                for a in self.arms:
                    rows = usable[(usable.arm == a) & (usable.outcome == o)]
                    has_change = ((rows.kind == "change") & (rows.time == t)).any()
                    has_scores = ((rows.kind == "score") & (rows.time == t)).any() and (
                        (rows.kind == "score") & (rows.time == base)
                    ).any()
                    ok &= bool(has_change or has_scores)
                if ok:
                    cells.add((t, o))
        return cells

    def ipd_cells(self) -> set[tuple[float, str]]:
        df = self.evidence["ipd"]
        follow = df[df.time != self.meta.times.baseline]
        return {(float(t), str(o)) for t, o in follow[["time", "outcome"]].drop_duplicates().values}

    def evidence_by_cell(self) -> pd.DataFrame:
        """Which evidence each follow-up (time, outcome) cell uses, one row per cell.

        Priority: ``ipd`` > ``arm_summary`` > ``contrast`` > ``threshold``. Validation has already
        refused double counting between ipd, arm summaries and contrasts; threshold rows of a cell
        with richer evidence (between-arm and within-arm alike) are superseded: kept in the file,
        not used, as DESIGN section 2 asks.
        """
        ipd, arm, con = self.ipd_cells(), self.arm_summary_cells(), set()
        for t, o in self.evidence["contrast"][["time", "outcome"]].values:
            con.add((float(t), str(o)))
        thr = self.evidence["threshold"]
        rows = []
        for t in self.times:
            for o in self.outcomes:
                cell_thr = thr[(thr.time == t) & (thr.outcome == o)]
                if (t, o) in ipd:
                    level = "ipd"
                elif (t, o) in arm:
                    level = "arm_summary"
                elif (t, o) in con:
                    level = "contrast"
                elif len(cell_thr):
                    level = "threshold"
                else:
                    level = "none"
                n_between = int((cell_thr.comparison == "between").sum())
                n_within = int((cell_thr.comparison == "within").sum())
                rows.append(
                    {
                        "time": t,
                        "outcome": o,
                        "evidence": level,
                        "threshold_between_rows": n_between,
                        "threshold_within_rows": n_within,
                        "thresholds_superseded": level in ("ipd", "arm_summary", "contrast") and len(cell_thr) > 0,
                    }
                )
        return pd.DataFrame(rows)

    def levels_present(self) -> list[str]:
        """Evidence levels with at least one usable row."""
        present = []
        if len(self.evidence["ipd"]):
            present.append("ipd")
        if len(self.usable_arm_summaries()):
            present.append("arm_summary")
        if len(self.evidence["contrast"]):
            present.append("contrast")
        if len(self.evidence["threshold"]):
            present.append("threshold")
        return present

    def sha256(self) -> str:
        """Hash of every file in the study folder that the loader read."""
        digest = hashlib.sha256()
        for name in sorted(self.files):
            digest.update(name.encode())
            digest.update(self.files[name].read_bytes())
        return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_study(study: str | Path) -> Study:
    """Load and validate a study folder (a bundled id such as ``farpour2022`` or a path).

    Raises
    ------
    InputError
        On the first problem found, naming the file, row and field.
    """
    folder = resolve_study(study)
    toml_path = folder / "study.toml"
    if not folder.is_dir():
        raise InputError(folder, "study folder not found (give a bundled study id or a folder path)")
    if not toml_path.is_file():
        raise InputError(toml_path, "file not found: every study folder needs a study.toml")
    meta = _read_study_toml(toml_path)
    files = {"study.toml": toml_path}
    evidence: dict[str, pd.DataFrame] = {}
    for level, name in EVIDENCE_FILES.items():
        path = folder / name
        if path.exists():
            files[name] = path
            evidence[level] = _read_csv(path, level, meta)
        else:
            evidence[level] = _empty_frame(level)
    known = {"study.toml", *EVIDENCE_FILES.values()}
    for extra in sorted(folder.glob("*.csv")):
        if extra.name not in known:
            raise InputError(
                extra,
                "unknown evidence file (expected one of: " + ", ".join(EVIDENCE_FILES.values()) + ")",
            )
    study_obj = Study(folder=folder, meta=meta, evidence=evidence, files=files)
    _check_cross_file(study_obj)
    return study_obj


def _read_study_toml(path: Path) -> StudyFile:
    raw = path.read_bytes()
    if not raw.strip():
        raise InputError(path, "file is empty")
    try:
        text = raw.decode("utf-8-sig")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"unreadable TOML: {exc}") from None
    try:
        return StudyFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        parts = [str(p) for p in err["loc"]]
        rule = err.get("ctx", {}).get("error")
        msg = err["msg"]
        if isinstance(rule, KeyRuleError):
            parts.append(rule.key)
            msg = str(rule)
        loc = ".".join(parts)
        if err["type"] == "extra_forbidden":
            msg = "unknown key (the schema is closed)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif "input" in err and not isinstance(err["input"], dict):
            msg = f"{msg} (got {err['input']!r})"
        raise InputError(path, msg, field=loc or None) from None


def _empty_frame(level: str) -> pd.DataFrame:
    cols = {c.name: pd.Series(dtype=_dtype(c)) for c in SCHEMAS[level]}
    cols["row"] = pd.Series(dtype="int64")
    return pd.DataFrame(cols)


def _dtype(col: Column) -> str:
    return {"str": "object", "choice": "object", "float": "float64", "int": "float64"}[col.kind]


def _read_records(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, records and the spreadsheet row of each record (the header is row 1).

    The csv module, not pandas: blank lines still count as rows (so row numbers match what a
    spreadsheet shows), a BOM and CRLF line ends are accepted, and a record with the wrong number
    of fields is reported at its own row.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc.reason})") from None
    if not text.strip():
        raise InputError(path, "file is empty (expected at least a header row)")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    records, rows = [], []
    start = 0
    try:
        # one record is one spreadsheet row: blank lines count, a quoted line break does not
        for start, record in enumerate(reader, start=1):
            if not record or all(not cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip() for cell in record]
                header_row = start
                continue
            if len(record) != len(header):
                raise InputError(
                    path, f"{len(record)} fields but the header has {len(header)} (an unquoted comma?)", row=start
                )
            records.append(record)
            rows.append(start)
    except csv.Error as exc:
        raise InputError(path, f"unreadable CSV: {exc}", row=start + 1) from None
    if header is None:
        raise InputError(path, "file is empty (expected at least a header row)")
    if header_row != 1:
        raise InputError(path, "the header must be the first line", row=header_row)
    return header, records, rows


def _read_csv(path: Path, level: str, meta: StudyFile) -> pd.DataFrame:
    header, records, rows = _read_records(path)
    for i, name in enumerate(header):
        if not name:
            raise InputError(path, f"column {i + 1} has no name in the header", row=1)
        if header.index(name) != i:
            raise InputError(path, "column named twice in the header", row=1, field=name)
    frame = pd.DataFrame(records, columns=header, dtype=object)
    frame.columns = [str(c).strip() for c in frame.columns]
    schema = {c.name: c for c in SCHEMAS[level]}
    for name in frame.columns:
        if name not in schema:
            raise InputError(
                path,
                "unknown column (expected: " + ", ".join(schema) + ")",
                row=1,
                field=name,
            )
    for col in schema.values():
        if col.required and col.name not in frame.columns:
            raise InputError(path, "required column is missing", row=1, field=col.name)
    out: dict[str, Any] = {}
    for col in schema.values():
        values = frame[col.name] if col.name in frame.columns else pd.Series([""] * len(frame))
        converted = _convert_column(path, col, values.tolist(), rows)
        # object dtype keeps None as None (pandas 3 would turn it into NaN in a str column)
        dtype = object if col.kind in ("str", "choice") else "float64"
        out[col.name] = pd.Series(converted, dtype=dtype, index=range(len(frame)))
    df = pd.DataFrame(out)
    df["row"] = np.asarray(rows, dtype="int64")
    _check_rows(path, level, df, meta)
    return df


def _convert_column(path: Path, col: Column, values: list[str], rows: list[int]) -> list:
    converted: list = []
    for raw, row in zip(values, rows, strict=True):
        text = raw.strip()
        if text == "":
            if col.needs_value:
                raise InputError(path, "a value is required", row=row, field=col.name)
            converted.append(None if col.kind in ("str", "choice") else math.nan)
            continue
        if col.kind in ("float", "int"):
            try:
                value = float(text)
            except ValueError:
                raise InputError(path, f"not a number (got {text!r})", row=row, field=col.name) from None
            if not math.isfinite(value):
                raise InputError(path, f"not a finite number (got {text!r})", row=row, field=col.name)
            if col.kind == "int" and value != int(value):
                raise InputError(path, f"must be a whole number (got {text!r})", row=row, field=col.name)
            converted.append(value)
        elif col.kind == "choice":
            if text not in col.choices:
                raise InputError(
                    path,
                    f"must be one of {', '.join(col.choices)} (got {text!r})",
                    row=row,
                    field=col.name,
                )
            converted.append(text)
        else:
            converted.append(text)
    return converted


def _check_rows(path: Path, level: str, df: pd.DataFrame, meta: StudyFile) -> None:
    arms, outcomes = set(meta.arms), set(meta.outcomes)
    follow = set(meta.times.follow_up)
    all_times = follow | {meta.times.baseline}
    for rec in df.to_dict("records"):
        row = rec["row"]
        if "arm" in rec and rec["arm"] is not None and rec["arm"] not in arms:
            raise InputError(
                path,
                f"unknown arm {rec['arm']!r} (study.toml has: {', '.join(arms)})",
                row=row,
                field="arm",
            )
        if rec["outcome"] not in outcomes:
            raise InputError(
                path,
                f"unknown outcome {rec['outcome']!r} (study.toml has: {', '.join(outcomes)})",
                row=row,
                field="outcome",
            )
        allowed_times = all_times if level in ("ipd", "arm_summary") else follow
        if rec["time"] not in allowed_times:
            raise InputError(
                path,
                f"unknown time {rec['time']:g} (study.toml has: {', '.join(f'{t:g}' for t in sorted(allowed_times))})",
                row=row,
                field="time",
            )
        spec = meta.outcomes[rec["outcome"]]
        lo, hi = spec.scale_min, spec.scale_max
        if level == "ipd":
            _check_value_in_scale(path, row, "value", rec["value"], lo, hi)
        elif level == "arm_summary":
            _check_arm_summary_row(path, rec, lo, hi, meta)
        elif level == "contrast":
            _check_contrast_row(path, rec, hi - lo)
        elif level == "threshold":
            _check_threshold_row(path, rec)
    _check_duplicates(path, level, df)
    if level == "ipd":
        _check_ipd_patients(path, df, meta.times.baseline)


def _check_value_in_scale(path, row, name, value, lo, hi) -> None:
    if not math.isnan(value) and not lo <= value <= hi:
        raise InputError(path, f"outside the scale range {lo:g} to {hi:g} (got {value:g})", row=row, field=name)


def _check_arm_summary_row(path: Path, rec: dict, lo: float, hi: float, meta: StudyFile) -> None:
    row = rec["row"]
    for name in ("n", "sd"):
        value = rec[name]
        if not math.isnan(value) and value <= 0:
            raise InputError(path, f"must be > 0 (got {value:g})", row=row, field=name)
    if rec["kind"] == "score":
        _check_value_in_scale(path, row, "mean", rec["mean"], lo, hi)
    else:
        if rec["time"] == meta.times.baseline:
            raise InputError(path, "a change from baseline needs a follow-up time", row=row, field="time")
        if not math.isnan(rec["mean"]) and abs(rec["mean"]) > hi - lo:
            raise InputError(
                path,
                f"a change cannot exceed the scale width {hi - lo:g} (got {rec['mean']:g})",
                row=row,
                field="mean",
            )
    if not math.isnan(rec["sd"]) and rec["sd"] > (hi - lo):
        raise InputError(
            path,
            f"an SD larger than the scale width {hi - lo:g} (got {rec['sd']:g})",
            row=row,
            field="sd",
        )


def _check_contrast_row(path: Path, rec: dict, width: float) -> None:
    row = rec["row"]
    est = rec["estimate"]
    if abs(est) > width:
        raise InputError(
            path,
            f"a difference cannot exceed the scale width {width:g} (got {est:g})",
            row=row,
            field="estimate",
        )
    p = rec["p_value"]
    if not math.isnan(p) and not 0 < p <= 1:
        raise InputError(path, f"must be in (0, 1] (got {p:g})", row=row, field="p_value")
    lo, hi = rec["ci_low"], rec["ci_high"]
    if math.isnan(lo) != math.isnan(hi):
        raise InputError(
            path,
            "give both ci_low and ci_high, or neither",
            row=row,
            field="ci_high" if math.isnan(hi) else "ci_low",
        )
    if not math.isnan(lo):
        if not lo < hi:
            raise InputError(
                path,
                f"ci_low must be below ci_high (got {lo:g} and {hi:g})",
                row=row,
                field="ci_low",
            )
        if not lo <= est <= hi:
            raise InputError(
                path,
                f"the CI {lo:g} to {hi:g} does not contain the estimate {est:g}",
                row=row,
                field="estimate",
            )
        level = rec["ci_level"]
        if math.isnan(level):
            raise InputError(path, "a CI needs its ci_level (e.g. 0.95)", row=row, field="ci_level")
        if not 0 < level < 1:
            raise InputError(path, f"must be in (0, 1) (got {level:g})", row=row, field="ci_level")
    se = rec["se"]
    if not math.isnan(se) and se <= 0:
        raise InputError(path, f"must be > 0 (got {se:g})", row=row, field="se")
    df = rec["df"]
    if not math.isnan(df) and df <= 0:
        raise InputError(path, f"must be > 0 (got {df:g})", row=row, field="df")
    if math.isnan(se) and math.isnan(lo) and math.isnan(p):
        raise InputError(
            path,
            "needs se, a CI (ci_low, ci_high, ci_level) or an exact p_value",
            row=row,
            field="se",
        )
    if math.isnan(se) and math.isnan(lo) and est == 0:
        raise InputError(
            path,
            "an SE cannot be derived from a p-value when the estimate is 0",
            row=row,
            field="p_value",
        )


def _check_threshold_row(path: Path, rec: dict) -> None:
    row = rec["row"]
    alpha = rec["alpha"]
    if not 0 < alpha < 1:
        raise InputError(path, f"must be in (0, 1) (got {alpha:g})", row=row, field="alpha")
    comparison, direction, test = rec["comparison"], rec["direction"], rec["test"]
    if comparison == "within" and rec["arm"] is None:
        raise InputError(path, "a within-arm statement needs its arm", row=row, field="arm")
    if comparison == "between" and rec["arm"] is not None:
        raise InputError(path, "a between-arm statement has no arm (leave it empty)", row=row, field="arm")
    if comparison == "between" and test == "paired_t":
        raise InputError(
            path,
            "a between-arm statement needs a two-sample test (two_sample_t, welch_t or normal)",
            row=row,
            field="test",
        )
    if comparison == "within" and test in ("two_sample_t", "welch_t"):
        raise InputError(path, "a within-arm statement needs paired_t or normal", row=row, field="test")
    if rec["relation"] == "<":
        wanted = ("favours_new", "favours_reference") if comparison == "between" else ("improvement", "worsening")
        if direction not in wanted:
            raise InputError(
                path,
                f"'P<alpha' needs the reported direction: one of {', '.join(wanted)} (got {direction!r})",
                row=row,
                field="direction",
            )
    elif direction is not None:
        raise InputError(path, "'P>alpha' has no direction (leave it empty)", row=row, field="direction")
    p = rec["p_value"]
    if not math.isnan(p):
        if not 0 < p <= 1:
            raise InputError(path, f"must be in (0, 1] (got {p:g})", row=row, field="p_value")
        if (rec["relation"] == "<") != (p < alpha):
            raise InputError(
                path,
                f"p_value {p:g} contradicts the relation P{rec['relation']}{alpha:g}",
                row=row,
                field="p_value",
            )


_KEYS = {
    "ipd": ["patient", "outcome", "time"],
    "arm_summary": ["arm", "outcome", "time", "kind"],
    "contrast": ["outcome", "time"],
    "threshold": ["outcome", "time", "comparison", "arm"],
}


def _check_duplicates(path: Path, level: str, df: pd.DataFrame) -> None:
    keys = _KEYS[level]
    dup = df[df.duplicated(subset=keys, keep="first")]
    if len(dup):
        rec = dup.iloc[0]
        first = df[(df[keys].fillna("") == rec[keys].fillna("")).all(axis=1)].iloc[0]
        what = ", ".join(
            f"{k}={rec[k]:g}" if isinstance(rec[k], float) else f"{k}={rec[k]}" for k in keys if rec[k] is not None
        )
        raise InputError(
            path,
            f"duplicate cell ({what}) already given in row {int(first['row'])}",
            row=int(rec["row"]),
            field=keys[0],
        )
    if level == "ipd":
        arms_per_patient = df.groupby("patient")["arm"].nunique()
        bad = arms_per_patient[arms_per_patient > 1]
        if len(bad):
            patient = bad.index[0]
            rec = df[df.patient == patient].iloc[1]
            raise InputError(path, f"patient {patient!r} appears in two arms", row=int(rec["row"]), field="arm")


def _check_ipd_patients(path: Path, df: pd.DataFrame, baseline_time: float) -> None:
    """The IPD model conditions on each patient's baseline and compares the two arms' patients:
    every patient needs a baseline value for each outcome it has rows for, and each outcome needs
    patients in both arms. Follow-up values may be missing (empty value or no row)."""
    if not len(df):
        return
    is_base = df["time"] == baseline_time
    has_base = df[is_base & df["value"].notna()].set_index(["patient", "outcome"]).index
    keys = pd.MultiIndex.from_frame(df[["patient", "outcome"]])
    lacking = ~keys.isin(has_base)
    if lacking.any():
        rec = df[lacking].iloc[0]
        what = "an empty baseline value" if bool(is_base[lacking].iloc[0]) else "no baseline row"
        raise InputError(
            path,
            f"patient {rec['patient']!r} has {what} for outcome {rec['outcome']}: the IPD model conditions "
            "on every patient's baseline (only follow-up values may be missing)",
            row=int(rec["row"]),
            field="value",
        )
    arms_per_outcome = df.groupby("outcome", sort=False)["arm"].nunique()
    one_arm = arms_per_outcome[arms_per_outcome < 2]
    if len(one_arm):
        outcome = one_arm.index[0]
        rec = df[df["outcome"] == outcome].iloc[0]
        raise InputError(
            path,
            f"outcome {outcome} has patients in one arm only: the IPD model needs both arms' patients for an "
            "outcome (give the other arm's patients, or this arm's data as arm summaries instead)",
            row=int(rec["row"]),
            field="arm",
        )


def _check_cross_file(study: Study) -> None:
    """Refuse double counting: a follow-up cell takes its between-arm evidence from one level."""
    files = {level: study.folder / name for level, name in EVIDENCE_FILES.items()}
    ipd, arm = study.ipd_cells(), study.arm_summary_cells()
    usable = study.usable_arm_summaries()
    for rec in study.evidence["contrast"].to_dict("records"):
        cell = (rec["time"], rec["outcome"])
        if cell in arm or cell in ipd:
            other = "arm_summaries.csv" if cell in arm else "ipd.csv"
            raise InputError(
                files["contrast"],
                f"two evidence levels for the same cell (outcome {rec['outcome']}, time {rec['time']:g}): "
                f"{other} already gives it; remove one to avoid double counting",
                row=rec["row"],
                field="outcome",
            )
    ipd_frame = study.evidence["ipd"]
    ipd_arm_outcome = {(a, o) for a, o in ipd_frame[["arm", "outcome"]].drop_duplicates().values}
    for rec in usable.to_dict("records"):
        if (rec["arm"], rec["outcome"]) in ipd_arm_outcome:
            raise InputError(
                files["arm_summary"],
                f"two evidence levels for the same cell (arm {rec['arm']}, outcome {rec['outcome']}): "
                "ipd.csv already gives these patients; remove one to avoid double counting",
                row=rec["row"],
                field="arm",
            )


# ---------------------------------------------------------------------------------------------
# Derived quantities used by the model layer
# ---------------------------------------------------------------------------------------------


def contrast_standard_errors(study: Study) -> pd.DataFrame:
    """The contrasts with ``estimate_nmr`` (new minus reference) and its SE, with the method used.

    SE comes from the ``se`` column when given, else from the CI (t with ``df`` when given, else
    normal), else from the exact p-value and the estimate (same rule for the reference
    distribution).
    """
    df = study.evidence["contrast"].copy()
    ses, methods = [], []
    for rec in df.to_dict("records"):
        dof = None if math.isnan(rec["df"]) else rec["df"]
        if not math.isnan(rec["se"]):
            ses.append(rec["se"])
            methods.append("reported SE")
        elif not math.isnan(rec["ci_low"]):
            ses.append(conversions.se_from_ci(rec["ci_low"], rec["ci_high"], rec["ci_level"], df=dof))
            methods.append(f"from {rec['ci_level']:.0%} CI ({f't, df={dof:g}' if dof else 'normal'})")
        else:
            ses.append(conversions.se_from_p(rec["estimate"], rec["p_value"], df=dof))
            methods.append(f"from exact p-value ({f't, df={dof:g}' if dof else 'normal'})")
    sign = np.where(df["direction"] == "new_minus_reference", 1.0, -1.0)
    df["estimate_nmr"] = sign * df["estimate"].to_numpy(dtype=float)
    df["se_derived"] = ses
    df["se_method"] = methods
    return df


def describe(study: Study) -> dict[str, Any]:
    """A short summary of a study for ``data list`` and the run manifest."""
    return {
        "id": study.id,
        "title": study.meta.study.title,
        "simulated": study.simulated,
        "arms": {
            k: {"label": a.label, "role": a.role, "n_randomised": a.n_randomised} for k, a in study.meta.arms.items()
        },
        "outcomes": study.outcomes,
        "follow_up_times": study.times,
        "evidence_levels": study.levels_present(),
    }
