"""Run folders: atomic writing, the manifest, and reading a run back.

A run is written into a hidden temporary folder beside its destination and renamed when complete,
so a folder named like a run is always a complete run. An existing run is replaced only with
``overwrite=True`` (and then only after the new one is complete).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from bayes_stenosis.errors import InputError, RunFolderError

#: Files every complete run folder holds.
REQUIRED_FILES = ("manifest.json", "posterior.nc", "diagnostics.csv")


@contextmanager
def atomic_run_folder(destination: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary folder; on success rename it to ``destination``.

    Raises
    ------
    InputError
        If ``destination`` exists and ``overwrite`` is false (checked before any work starts).
    """
    destination = Path(destination)
    if destination.exists() and not overwrite:
        raise InputError(destination, "run folder already exists; choose another --out or pass --overwrite")
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.tmp-", dir=destination.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if destination.exists():
        trash = destination.with_name(f".{destination.name}.old-{datetime.now().strftime('%H%M%S%f')}")
        destination.rename(trash)
        tmp.rename(destination)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        tmp.rename(destination)


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def check_run_folder(run: str | Path) -> Path:
    """Refuse anything that is not a complete run folder, with a one-line error."""
    path = Path(run)
    if not path.is_dir():
        raise RunFolderError(path, "not a run folder (no such directory)")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise RunFolderError(path, f"not a complete run folder: missing {', '.join(missing)}")
    return path


def read_manifest(run: Path) -> dict:
    path = check_run_folder(run) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunFolderError(path, f"unreadable JSON: {exc.msg} (line {exc.lineno})") from None
