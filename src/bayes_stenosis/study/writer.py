"""The one writer of study folders: ``study.toml`` from a document, evidence CSVs in the schema's column order.

:func:`bayes_stenosis.study.write_template` (the empty preset), the simulated studies of
:mod:`bayes_stenosis.simulation` and the test builders of :mod:`bayes_stenosis.testing` all render
and write their files here; each decides for itself whether an existing folder may be written into.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_stenosis.study.schema import SCHEMAS


def toml_value(value: Any) -> str:
    """One TOML value: bool, integer, finite float (``repr``, so it reads back exactly), string or list."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            raise ValueError(f"cannot write a non-finite number to study.toml ({value!r})")
        return repr(float(value))
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)  # a valid TOML basic string...
        return text.replace("\x7f", "\\u007f")  # ...once DEL is escaped too
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to study.toml")


def dumps_toml(doc: dict[str, Any], header: str = "") -> str:
    """A TOML document: ``header`` as comment lines, top-level keys, then one ``[table]`` per nested dict
    (in the order given; a table holding only tables gets no header line of its own)."""
    lines = [f"# {line}" for line in header.splitlines()]
    tables: list[tuple[str, dict]] = []
    for key, value in doc.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {toml_value(value)}")

    def emit(name: str, table: dict) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        subtables = [(f"{name}.{k}", v) for k, v in table.items() if isinstance(v, dict)]
        if scalars or not subtables:  # a table of tables needs no header of its own
            lines.append("")
            lines.append(f"[{name}]")
            lines.extend(f"{key} = {toml_value(value)}" for key, value in scalars.items())
        for sub_name, sub in subtables:
            emit(sub_name, sub)

    for name, table in tables:
        emit(name, table)
    return "\n".join(lines) + "\n"


def evidence_csv(level: str, frame: pd.DataFrame | None = None) -> str:
    """The CSV text of one evidence level: its schema's columns (those ``frame`` has) in schema order.

    Without ``frame``, the header row of every column of the level. Numbers are written unrounded
    (pandas' shortest round-trip form), empty cells for missing values, ``\\n`` line ends.
    """
    if frame is None:
        frame = pd.DataFrame(columns=[c.name for c in SCHEMAS[level]])
    columns = [c.name for c in SCHEMAS[level] if c.name in frame.columns]
    return frame[columns].to_csv(index=False, lineterminator="\n")


def write_folder(folder: Path, files: Mapping[str, str], *, exclusive: bool = False) -> Path:
    """Write ``files`` (name -> text, UTF-8, ``\\n`` line ends) into ``folder``, created if needed.

    With ``exclusive`` a file that already exists is an error (``FileExistsError``) instead of being
    replaced. Callers check the folder first (empty, or holding only files they own).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        with open(folder / name, "x" if exclusive else "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    return folder
