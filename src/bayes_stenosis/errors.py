"""User-facing errors: one line naming the file, the row and the field.

The CLI catches :class:`InputError` and prints ``str(error)`` with exit code 2 and no traceback.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input from a user file: the message names the file, row (1-based) and field.

    Parameters
    ----------
    path
        The file at fault.
    message
        What is wrong, with the offending value.
    row
        1-based row number as a spreadsheet shows it (the header is row 1), if applicable.
    field
        Column or key name, if applicable.
    """

    def __init__(
        self,
        path: str | Path | None,
        message: str,
        *,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.row = row
        self.field = field
        self.message = message
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = [] if self.path is None else [str(self.path)]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            kind = "column" if self.row is not None else "key"
            where.append(f"{kind} {self.field}")
        location = ", ".join(where[1:])
        head = where[0] if where else ""
        if location:
            head = f"{head} {location}" if head else location
        text = f"{head}: {self.message}" if head else self.message
        return " ".join(text.split())  # guarantee a single line


class RunFolderError(InputError):
    """A folder given as a run is not a complete run folder, or one of its files is damaged."""


class OutputPathError(InputError):
    """An output path that cannot be written, or that exists and ``--overwrite`` was not given."""


class DestinationLockedError(InputError):
    """Another live process is writing the same destination (its lock is held)."""


class SynthesisError(InputError):
    """Runs that cannot be synthesised as given (a posterior where a likelihood is needed, different
    comparisons or scales, a cell without evidence); the message names the run."""


class UnverifiedRunWarning(UserWarning):
    """A run folder written before output checksums were recorded: its files are checked for structure only."""


class ConvergenceError(Exception):
    """Diagnostics failed under ``--strict`` (exit code 3)."""


def decode_utf8(path: str | Path, raw: bytes, *, rows: bool = False) -> str:
    """``raw`` as UTF-8 text (a leading BOM dropped); an :class:`InputError` naming the line otherwise.

    The line is counted in the raw bytes (the text cannot be decoded), so it is the line a text
    editor shows. With ``rows`` (a CSV) it is reported as the row, which is the spreadsheet row
    unless a quoted cell spans lines before it.
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        where = f"character {column}" if rows else f"line {line}, character {column}"
        raise InputError(
            path,
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at {where} ({exc.reason}); save the file as UTF-8",
            row=line if rows else None,
        ) from None


def validation_message(errors: list[dict]) -> tuple[str, str]:
    """The dotted location and a one-line message of the first pydantic validation error.

    Takes ``ValidationError.errors()`` (no pydantic import here). The tags pydantic adds to the
    location of a union member (``literal['uncertain']``, ``float``) are dropped, and the members'
    messages joined, so ``correlations = ["0.5"]`` reads "should be 'uncertain' or a valid number".
    A number written as a string gets a hint: strict types never turn ``"10"`` into 10.
    """
    first = errors[0]
    loc = [str(p) for p in first["loc"]]
    base = [p for p in loc if not _is_union_tag(p)]
    same = [e for e in errors if [str(p) for p in e["loc"] if not _is_union_tag(str(p))] == base]
    if len(same) > 1:  # the members of one union, each with its own complaint
        parts = [e["msg"].removeprefix("Input should be ") for e in same]
        msg = "should be " + " or ".join(dict.fromkeys(parts))
    else:
        msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key (the schema is closed)"
    elif first["type"] == "missing":
        msg = "required key is missing"
    elif "input" in first and not isinstance(first["input"], dict | list):
        msg = f"{msg} (got {first['input']!r})"
        if isinstance(first["input"], str) and any(e["type"] in _NUMBER_TYPES for e in same):
            msg += ": a number is written without quotes"
    return ".".join(base), msg


_NUMBER_TYPES = ("float_type", "int_type", "float_parsing", "int_parsing")


def _is_union_tag(part: str) -> bool:
    return part in ("float", "int", "str", "bool") or part.startswith(("literal[", "function-", "list[", "dict["))
