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
    """A folder given as a run is not a complete run folder."""


class ConvergenceError(Exception):
    """Diagnostics failed under ``--strict`` (exit code 3)."""
