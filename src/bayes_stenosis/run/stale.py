"""Leftovers of writers that were killed, found and removed (``bayes-stenosis clean``, and every new
write into the same folder).

What a writer leaves beside ``<name>`` when it dies before it finishes:

=============================  =======================================================================
``.<name>.tmp-XXXX/``          a run folder being written (:func:`~bayes_stenosis.run.atomic_run_folder`);
                               it holds :data:`INCOMPLETE_MARKER` until just before it is renamed
``.<name>.tmp-PID-XXXX``       a single file being written (``export``, ``summarize``, ``report``, the
                               manifest's checksums)
``.<name>.old-XXXX/``          a run being replaced with ``--overwrite``, between its two renames
``.<name>.lock``               the lock of ``<name>`` (:mod:`bayes_stenosis.run.lock`)
=============================  =======================================================================

A temporary folder is stale when no live process holds its destination's lock (the kernel drops
the lock of a dead process) and it carries the marker, or, written by an older version without a
marker, has not changed for :data:`UNMARKED_AGE_SECONDS`. A temporary file is stale when the PID
in its name is dead or it is that old. A displaced run (``.old-``) whose destination is missing is
put back, never deleted. Readers never take any of these for a run (:func:`check_run_folder`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bayes_stenosis.errors import DestinationLockedError, InputError
from bayes_stenosis.run.lock import HELD, LOCK_SUFFIX, destination_lock, lock_is_free, pid_alive

#: Written first into a temporary run folder, removed last before it is renamed into place.
INCOMPLETE_MARKER = ".incomplete"

#: Age after which a temporary folder or file of unknown owner is taken for a leftover.
UNMARKED_AGE_SECONDS = 3600.0

TEMPORARY, REPLACED = ".tmp-", ".old-"


@dataclass
class CleanReport:
    """What :func:`clean_leftovers` removed, put back and left alone (with why)."""

    removed: list[Path] = field(default_factory=list)
    restored: list[tuple[Path, Path]] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)


def is_leftover_name(name: str) -> bool:
    """A hidden name this package gives to unfinished outputs (temporary, displaced, lock)."""
    return name.startswith(".") and (TEMPORARY in name or REPLACED in name or name.endswith(LOCK_SUFFIX))


def is_temporary_name(name: str) -> bool:
    return name.startswith(".") and TEMPORARY in name


def destination_of(path: Path) -> Path:
    """The output a leftover belongs to: ``.<name>.tmp-XXXX`` -> ``<name>``."""
    name = path.name[1:]
    for mark in (TEMPORARY, REPLACED):
        if mark in name:
            return path.with_name(name.split(mark, 1)[0])
    return path.with_name(name.removesuffix(LOCK_SUFFIX))


def write_incomplete_marker(folder: Path, destination: Path) -> None:
    """Mark ``folder`` as a run being written: by whom, since when, for which destination."""
    owner = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "destination": str(destination),
    }
    (folder / INCOMPLETE_MARKER).write_text(json.dumps(owner) + "\n")


def age_seconds(path: Path) -> float:
    try:
        return time.time() - path.lstat().st_mtime
    except FileNotFoundError:
        return 0.0


def temporary_file_pid(path: Path) -> int | None:
    """The PID in ``.<name>.tmp-PID-XXXX`` (None for other names)."""
    head = path.name.rsplit(TEMPORARY, 1)[-1].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def stale_reason(path: Path) -> str | None:
    """Why a leftover whose destination's lock is free may go (None: it may still be in use)."""
    if path.name.endswith(LOCK_SUFFIX):
        return "lock file of no live process"
    old = age_seconds(path) > UNMARKED_AGE_SECONDS
    if path.is_dir() and REPLACED in path.name:
        return "run displaced by an --overwrite that did not finish"
    if path.is_dir():
        if (path / INCOMPLETE_MARKER).is_file():
            return "temporary folder of a writer that is gone"
        return "temporary folder without a marker, unchanged for over an hour" if old else None
    pid = temporary_file_pid(path)
    if pid is not None and not pid_alive(pid):
        return f"temporary file of a process that is gone (PID {pid})"
    return "temporary file unchanged for over an hour" if old else None


def find_leftovers(root: Path, *, recursive: bool = True) -> list[Path]:
    """Leftover entries under ``root`` (not descending into leftovers themselves), sorted."""
    root = Path(root)
    if is_leftover_name(root.name):
        return [root]
    found = []
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            if is_leftover_name(name):
                found.append(Path(folder) / name)
        dirs[:] = [d for d in dirs if not is_leftover_name(d)] if recursive else []
    return sorted(found)


def clean_leftovers(root: str | Path, *, recursive: bool = True, dry_run: bool = False) -> CleanReport:
    """Remove the stale leftovers under ``root`` (see the module docstring); put displaced runs back.

    Each destination's leftovers are handled while holding its lock, so nothing a live writer owns
    is touched; with ``dry_run`` nothing is changed and the report says what would be.

    Raises
    ------
    InputError
        ``root`` does not exist.
    """
    root = Path(root)
    if not root.exists() and not root.is_symlink():
        raise InputError(root, "no such file or folder")
    report = CleanReport()
    by_destination: dict[Path, list[Path]] = {}
    for path in find_leftovers(root, recursive=recursive):
        if os.path.abspath(path) not in HELD:  # this process's own locks are not leftovers
            by_destination.setdefault(destination_of(path), []).append(path)
    for destination, paths in by_destination.items():
        if dry_run:
            if not lock_is_free(destination):
                report.kept += [(p, "its writer is running") for p in paths]
                continue
            for path in paths:
                reason = stale_reason(path)
                if reason is None:
                    report.kept.append((path, "may still be in use"))
                elif REPLACED in path.name and not destination.exists():
                    report.restored.append((path, destination))
                else:
                    report.removed.append(path)
            continue
        try:
            with destination_lock(destination):
                for path in paths:
                    remove_leftover(path, destination, report)
        except DestinationLockedError:
            report.kept += [(p, "its writer is running") for p in paths]
    return report


def remove_leftover(path: Path, destination: Path, report: CleanReport) -> None:
    """Remove one leftover (its destination's lock held), or put a displaced run back."""
    if path.name.endswith(LOCK_SUFFIX):  # ours now: it goes when the lock is released
        report.removed.append(path)
        return
    reason = stale_reason(path)
    if reason is None:
        report.kept.append((path, "may still be in use"))
    elif REPLACED in path.name and not destination.exists():
        path.rename(destination)  # the only copy of that run: put it back
        report.restored.append((path, destination))
    elif path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
        report.removed.append(path)
    else:
        path.unlink(missing_ok=True)
        report.removed.append(path)
