"""Run folders: published once and completely, or not at all; read back only when complete.

A run is written into a hidden temporary folder ``.<name>.tmp-XXXX`` beside its destination, marked
incomplete (:data:`~bayes_stenosis.run.stale.INCOMPLETE_MARKER`) from its first byte. When the writer
is done, the manifest gets the checksums of every other file (:mod:`bayes_stenosis.run.integrity`),
written last; the marker goes, and the folder is renamed into place. All of it happens under the
destination's lock (:mod:`bayes_stenosis.run.lock`), and the destination is checked again at
publish time: a run that appeared meanwhile is never replaced, and an existing run is replaced only
with ``overwrite=True`` (then only after the new one is complete).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from bayes_stenosis.errors import RunFolderError
from bayes_stenosis.run.integrity import FILES_KEY, add_records, record_folder
from bayes_stenosis.run.lock import destination_lock
from bayes_stenosis.run.paths import MANIFEST_NAME, check_output_folder, make_parents
from bayes_stenosis.run.stale import (
    INCOMPLETE_MARKER,
    REPLACED,
    clean_leftovers,
    is_temporary_name,
    write_incomplete_marker,
)

#: Files every complete run folder holds.
REQUIRED_FILES = ("manifest.json", "posterior.nc", "diagnostics.csv")


@contextmanager
def atomic_run_folder(destination: Path, *, overwrite: bool, what: str = "run folder") -> Iterator[Path]:
    """Yield a temporary folder; when the block ends without error, publish it as ``destination``.

    Stale leftovers of killed writers beside ``destination`` are removed first. ``manifest.json``,
    if the block wrote one, gets the checksums of the other files (a minimal one is written
    otherwise): every published folder can be verified.

    Raises
    ------
    OutputPathError
        ``destination`` cannot be written, or exists and ``overwrite`` is false (checked on entry and
        again at publish time).
    DestinationLockedError
        Another live process is writing ``destination``.
    """
    destination = check_output_folder(destination, overwrite=overwrite, what=what)
    make_parents(destination, what)
    with destination_lock(destination, what=what):
        clean_leftovers(destination.parent, recursive=False)
        tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.tmp-", dir=destination.parent))
        try:
            write_incomplete_marker(tmp, destination)
            yield tmp
            finish_manifest(tmp)
            publish(tmp, destination, overwrite=overwrite, what=what)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def finish_manifest(folder: Path) -> None:
    """Drop the incomplete marker and write the manifest with the checksums of every other file, last."""
    (folder / INCOMPLETE_MARKER).unlink(missing_ok=True)
    path = folder / MANIFEST_NAME
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    manifest[FILES_KEY] = record_folder(folder)
    write_json(path, manifest)


def publish(tmp: Path, destination: Path, *, overwrite: bool, what: str) -> None:
    """Rename ``tmp`` to ``destination``; an existing destination only with ``overwrite``, and only
    after re-checking that it is still a folder this program may replace."""
    if not (destination.exists() or destination.is_symlink()):
        try:
            os.rename(tmp, destination)  # fails on a non-empty folder that appeared in between
            return
        except OSError:
            if not destination.exists():
                raise
    # it appeared meanwhile, or --overwrite: the same checks again (refuses without overwrite)
    check_output_folder(destination, overwrite=overwrite, what=what)
    displaced = destination.with_name(f".{destination.name}{REPLACED}{datetime.now().strftime('%H%M%S%f')}")
    destination.rename(displaced)
    try:
        os.rename(tmp, destination)
    except OSError:
        displaced.rename(destination)  # put the old run back: never lose both
        raise
    shutil.rmtree(displaced, ignore_errors=True)


@contextmanager
def amend_run(folder: str | Path) -> Iterator[Callable[[list[Path]], None]]:
    """Add or replace files of a published run under its lock; yield ``record(paths)``, which puts
    their checksums into the manifest (a file not recorded would read as unverified)."""
    folder = check_run_folder(folder)
    with destination_lock(folder, what="run folder"):

        def record(paths: list[Path]) -> None:
            names = [Path(p).resolve().relative_to(folder.resolve()).as_posix() for p in paths]
            add_records(folder / MANIFEST_NAME, folder, names)

        yield record


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, default=json_default) + "\n")


def json_default(obj: Any):
    """numpy scalars and arrays, and paths, as JSON."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def check_run_folder(run: str | Path, *, staging: bool = False) -> Path:
    """Refuse anything that is not a complete run folder, with a one-line error.

    A temporary folder of a write in progress or of a killed write is never a run, whatever it
    holds; ``staging=True`` lets the writer itself (plots and report rendered inside it) through.
    """
    path = Path(run)
    if not path.is_dir():
        raise RunFolderError(path, "not a run folder (no such directory)")
    if not staging and (is_temporary_name(path.name) or (path / INCOMPLETE_MARKER).exists()):
        raise RunFolderError(
            path,
            "an unfinished run (the temporary folder of a write in progress or of a killed one), not a run; "
            f"`bayes-stenosis clean {path.parent}` removes it once its writer is gone",
        )
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise RunFolderError(path, f"not a complete run folder: missing {', '.join(missing)}")
    return path


def read_manifest(run: Path, *, staging: bool = False) -> dict:
    path = check_run_folder(run, staging=staging) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunFolderError(path, f"unreadable JSON: {exc.msg} (line {exc.lineno}); the file is damaged") from None
    except UnicodeDecodeError:
        raise RunFolderError(path, "not UTF-8 text; the file is damaged") from None
    if not isinstance(manifest, dict):
        raise RunFolderError(path, "not a manifest (a JSON object is expected); the file is damaged")
    return manifest
