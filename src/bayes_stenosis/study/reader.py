"""Reading ``study.toml`` and the evidence CSVs into typed objects.

Every problem is one :class:`~bayes_stenosis.errors.InputError` naming the file, the 1-based row (the
header is row 1, as a spreadsheet shows it) and the field.
"""

from __future__ import annotations

import csv
import io
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from bayes_stenosis.errors import InputError, decode_utf8, validation_message
from bayes_stenosis.study.schema import SCHEMAS, Column, KeyRuleError, StudyFile


def read_study_toml(path: Path) -> StudyFile:
    """Parse and validate ``study.toml``; the first schema error becomes an ``InputError`` at ``table.key``.

    Types are strict: ``margin = "10"`` (a string) is an error, not the number 10.
    """
    raw = path.read_bytes()
    if not raw.strip():
        raise InputError(path, "file is empty")
    text = decode_utf8(path, raw)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"unreadable TOML: {exc}") from None
    try:
        return StudyFile.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        loc, msg = validation_message(errors)
        rule = errors[0].get("ctx", {}).get("error")
        if isinstance(rule, KeyRuleError):  # a cross-key rule names the key it blames
            loc, msg = ".".join(p for p in (loc, rule.key) if p), str(rule)
        raise InputError(path, msg, field=loc or None) from None


def empty_frame(level: str) -> pd.DataFrame:
    """The typed frame of an evidence level with no rows (its CSV is absent)."""
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
    text = decode_utf8(path, path.read_bytes(), rows=True)
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
                _refuse_other_delimiters(path, header, start)
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


#: Delimiters a spreadsheet may have exported instead of commas (a ';' with decimal commas, tabs).
OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "vertical bar"}


def _refuse_other_delimiters(path: Path, header: list[str], row: int) -> None:
    """A header read as one column that another delimiter would split: say so, instead of an
    "unknown column" or an "unquoted comma?" later on."""
    if len(header) != 1:
        return
    for delimiter, name in OTHER_DELIMITERS.items():
        if delimiter in header[0]:
            raise InputError(
                path,
                f"the header is one column {header[0]!r}: the file looks {name}-delimited ({delimiter!r}); "
                "save it as comma-separated CSV (decimal point, not comma)",
                row=row,
            )


def read_evidence_csv(path: Path, level: str) -> pd.DataFrame:
    """Read one evidence CSV: header checked against the level's schema, every cell converted.

    The frame has one column per schema column (absent optional columns are empty) and ``row``, the
    spreadsheet row of each record. Row and cross-file rules are :mod:`bayes_stenosis.study.checks`.
    """
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
