"""What every saved result records about how it was made: versions, git commit, command line, time."""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

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
    argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv else []
    return " ".join(shlex.quote(a) for a in argv)


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
