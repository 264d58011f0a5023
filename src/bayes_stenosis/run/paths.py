"""Output paths, checked before any work and written without ever replacing what the user did not ask to.

Every command that writes (``fit``, ``sensitivity``, ``reproduce``, ``export --out``, ``summarize --csv /
--markdown``, ``report``) checks its output path with :func:`check_output_folder` or
:func:`check_output_file` before it samples or reads anything, and refuses in the same words:

* a path under a regular file, or whose nearest existing folder is not writable;
* a destination that exists, unless ``overwrite``; a file where a folder is expected, or the reverse;
* with ``overwrite``, a non-empty folder without ``manifest.json``: ``--overwrite`` replaces only
  folders this program wrote, never, say, a home directory given as ``--out``.

Missing parent folders are created when the output is written (as ``fit --out`` always did).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from bayes_stenosis.errors import OutputPathError

#: The file that marks a folder as written by bayes-stenosis (``--overwrite`` may replace it).
MANIFEST_NAME = "manifest.json"


def exists_message(what: str) -> str:
    """The one refusal every command gives for an existing output."""
    return f"{what} already exists; pass --overwrite to replace it, or choose another path (nothing was written)"


def check_parent(path: Path, what: str) -> None:
    """Refuse a path that cannot be created: a file on the way, or an unwritable nearest folder."""
    ancestor = path.parent
    while not ancestor.exists():
        if ancestor.is_symlink():  # a dangling link on the way
            raise OutputPathError(ancestor, f"is a broken symbolic link; cannot write the {what} {path} under it")
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputPathError(ancestor, f"is a file, not a folder; cannot write the {what} {path} under it")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(ancestor, f"folder is not writable; cannot write the {what} {path} in it")


def check_output_folder(destination: str | Path, *, overwrite: bool, what: str = "run folder") -> Path:
    """Check that ``destination`` can be written as a folder (see the module docstring); return it.

    Raises
    ------
    OutputPathError
        Naming the path at fault; nothing has been written.
    """
    destination = Path(destination)
    check_parent(destination, what)
    if destination.exists() or destination.is_symlink():
        if not destination.is_dir():
            raise OutputPathError(destination, f"exists and is not a folder; cannot write the {what} there")
        if not overwrite:
            raise OutputPathError(destination, exists_message(what))
        if not (destination / MANIFEST_NAME).is_file() and any(destination.iterdir()):
            raise OutputPathError(
                destination,
                f"is a folder that bayes-stenosis did not write (no {MANIFEST_NAME}); --overwrite replaces only "
                f"its own {what}s: choose another path",
            )
    return destination


def check_output_file(target: str | Path, *, overwrite: bool, what: str = "file") -> Path:
    """Check that ``target`` can be written as a file (see the module docstring); return it.

    Raises
    ------
    OutputPathError
        Naming the path at fault; nothing has been written.
    """
    target = Path(target)
    if target.name in ("", ".", ".."):
        raise OutputPathError(target, f"is not a file name; give the path of the {what} to write")
    check_parent(target, what)
    if target.exists() or target.is_symlink():
        if target.is_dir():
            raise OutputPathError(target, f"is a folder; give the path of the {what} to write")
        if not overwrite:
            raise OutputPathError(target, exists_message(what))
    return target


def make_parents(path: Path, what: str) -> None:
    """Create the missing parent folders of ``path`` (one-line error if that fails)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(path.parent, f"cannot create the folder for the {what}: {exc.strerror}") from None


def temporary_sibling(path: Path) -> Path:
    """A hidden name beside ``path`` for writing it first: ``.<name>.tmp-<pid>-<random>`` (see ``clean``)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def write_output_file(
    target: str | Path, write: Callable[[Path], None], *, overwrite: bool, what: str = "file"
) -> Path:
    """Write a file completely or not at all: ``write(tmp)`` writes a hidden sibling, which then
    takes the name ``target``.

    Without ``overwrite`` the rename is a hard link, which fails if ``target`` appeared meanwhile,
    so a file created by someone else between the check and the end is never replaced.

    Raises
    ------
    OutputPathError
        The path cannot be written, or exists and ``overwrite`` is false.
    """
    target = check_output_file(target, overwrite=overwrite, what=what)
    make_parents(target, what)
    tmp = temporary_sibling(target)
    try:
        write(tmp)
        if overwrite:
            os.replace(tmp, target)
        else:
            publish_new_file(tmp, target, what)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def publish_new_file(tmp: Path, target: Path, what: str) -> None:
    """Give ``tmp`` the name ``target`` only if ``target`` does not exist (atomically where possible)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputPathError(target, exists_message(what)) from None
    except OSError:  # a file system without hard links: check, then rename (a small window remains)
        if target.exists():
            raise OutputPathError(target, exists_message(what)) from None
        os.replace(tmp, target)
