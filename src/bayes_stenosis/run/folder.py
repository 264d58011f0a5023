"""Run folders: atomic writing, the manifest, and reading a run back.

A run is written into a hidden temporary folder beside its destination and renamed when complete,
so a folder named like a run is always a complete run. An existing run is replaced only with
``overwrite=True`` (and then only after the new one is complete).
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bayes_stenosis.errors import InputError, RunFolderError

#: Files every complete run folder holds.
REQUIRED_FILES = ("manifest.json", "posterior.nc", "diagnostics.csv")
KEY_PACKAGES = (
    "bayes-stenosis",
    "pymc",
    "pytensor",
    "arviz",
    "nutpie",
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "pydantic",
    "matplotlib",
    "numba",
)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in KEY_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str | None:
    """The commit of the source checkout the package runs from, if any."""
    here = Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=5,
    )
    return result.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def command_line() -> str:
    import shlex

    argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv else []
    return " ".join(shlex.quote(a) for a in argv)


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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


def provenance(version: str) -> dict:
    """The header every manifest starts with: package, version, time, command line, git commit, versions."""
    return {
        "package": "bayes-stenosis",
        "package_version": version,
        "created_utc": now_utc(),
        "command_line": command_line(),
        "git_commit": git_commit(),
        "versions": package_versions(),
    }
