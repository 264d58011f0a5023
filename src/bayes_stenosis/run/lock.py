"""One writer per destination: an advisory lock file beside the folder or file being written.

``<parent>/.<name>.lock`` is locked with ``fcntl.flock`` for as long as a process prepares and
publishes ``<parent>/<name>``: ``bayes-stenosis fit`` takes it before sampling, so a second fit into
the same run folder is refused at once (exit 2) instead of sampling for minutes and then replacing
the first one. The kernel releases a flock when its process dies, however it dies, so a killed
writer never leaves a lock behind: its lock file stays, and the next writer takes it over. The file
holds the owner's PID, host and start time, for the refusal message, and for one more case: a lock
still held although its recorded owner is dead (a child process that inherited the descriptor) is
taken over too.

Where ``fcntl`` does not exist (Windows) the lock file is created with ``O_CREAT | O_EXCL`` and a
lock whose recorded PID is dead is taken over.

Locks are re-entrant within a process: :func:`bayes_stenosis.run.fit` holds the lock of its run
folder while sampling and :func:`bayes_stenosis.run.atomic_run_folder` takes it again to publish.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bayes_stenosis.errors import DestinationLockedError

try:
    import fcntl
except ImportError:  # Windows: O_EXCL lock files with a PID check (see the module docstring)
    fcntl = None

#: Suffix of lock files: ``.<name>.lock`` beside ``<name>``.
LOCK_SUFFIX = ".lock"

#: How long to wait before taking over a lock held although its recorded owner is dead.
TAKEOVER_WAIT_SECONDS = 0.2


@dataclass
class HeldLock:
    """A lock this process holds: its file, descriptor and how many ``with`` blocks hold it."""

    path: Path
    fd: int
    depth: int = 1


#: Locks held by this process, by lock-file path (re-entrancy).
HELD: dict[str, HeldLock] = {}


def lock_path(destination: str | Path) -> Path:
    """The lock file of ``destination``: ``.<name>.lock`` in the same folder."""
    destination = Path(destination)
    return destination.parent / f".{destination.name}{LOCK_SUFFIX}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this machine (a zombie counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def lock_owner(path: Path) -> dict:
    """What a lock file says about its owner (``{}`` when unreadable or empty)."""
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def owner_is_dead(owner: dict) -> bool:
    """True only when the owner ran on this host and its PID is gone (unknown owners are alive)."""
    pid = owner.get("pid")
    return isinstance(pid, int) and owner.get("host") == socket.gethostname() and not pid_alive(pid)


@contextmanager
def destination_lock(destination: str | Path, *, what: str = "run folder") -> Iterator[Path]:
    """Hold the lock of ``destination`` (its parent folder must exist); yield the lock file's path.

    Raises
    ------
    DestinationLockedError
        Another live process holds it: the message names the destination, the owner's PID and since when.
    """
    path = lock_path(destination)
    key = os.path.abspath(path)
    held = HELD.get(key)
    if held is not None:
        held.depth += 1
    else:
        HELD[key] = held = HeldLock(path=path, fd=acquire(path, Path(destination), what))
    try:
        yield path
    finally:
        held.depth -= 1
        if held.depth == 0:
            del HELD[key]
            release(held)


def acquire(path: Path, destination: Path, what: str) -> int:
    """Take the lock file ``path``; return its descriptor (kept open while the lock is held)."""
    for _ in range(20):  # each retry follows a lock file replaced under us; more means a livelock
        fd = try_lock(path)
        if fd is None:
            owner = lock_owner(path)
            if owner_is_dead(owner):
                # a new owner writes its PID within microseconds of locking: look again before
                # deciding that the dead PID is the holder (an orphan of a dead writer)
                time.sleep(TAKEOVER_WAIT_SECONDS)
                fd = try_lock(path)
                if fd is None and lock_owner(path) == owner:
                    unlink_quietly(path)
                    continue
            if fd is None:
                raise DestinationLockedError(destination, locked_message(what, lock_owner(path) or owner))
        try:
            same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same_file = False
        if not same_file:  # the previous owner unlinked it between our open and our lock: retry
            os.close(fd)
            continue
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv[:1] + sys.argv[1:8]),
        }
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(owner) + "\n").encode())
        return fd
    raise DestinationLockedError(destination, f"could not take the lock {path} (it keeps changing)")


def try_lock(path: Path) -> int | None:
    """A descriptor of the locked file, or None when another process holds the lock."""
    if fcntl is None:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def release(held: HeldLock) -> None:
    """Remove the lock file while still holding it (no one can lock the old inode after), then unlock."""
    unlink_quietly(held.path)
    os.close(held.fd)


def lock_is_free(destination: str | Path) -> bool:
    """Whether no live process holds the lock of ``destination`` (this process's own locks count as
    free). Changes nothing: the lock file, if any, stays."""
    path = lock_path(destination)
    if os.path.abspath(path) in HELD or not path.exists():
        return True
    if fcntl is None:
        return owner_is_dead(lock_owner(path))
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return owner_is_dead(lock_owner(path))
    finally:
        os.close(fd)  # closing drops a lock taken here
    return True


def unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)


def locked_message(what: str, owner: dict) -> str:
    who = f"PID {owner['pid']}" if "pid" in owner else "another process"
    if owner.get("host") and owner.get("host") != socket.gethostname():
        who += f" on {owner['host']}"
    since = f" since {owner['started_utc']}" if owner.get("started_utc") else ""
    return (
        f"another bayes-stenosis process ({who}{since}) is writing this {what}; "
        "wait for it to finish, or choose another --out or --name (nothing was written)"
    )
