"""Checksums of a run folder's files: recorded in the manifest when the folder is published, verified
by every reader.

``manifest.json`` holds, under ``output_files``, the SHA-256 and size in bytes of every file in the folder
except itself (``plots/forest.png``-style paths, ``/``-separated), taken just before the folder is
renamed into place; a command that later adds a file to a run (``report``) records it the same way.
A file whose size or digest differs is damaged, and the reader names it (:class:`RunFolderError`,
exit 2) instead of reading it.

Run folders written before checksums were recorded (no ``output_files`` key) still load, with an
:class:`~bayes_stenosis.errors.UnverifiedRunWarning`; their files get the structural checks below
only, which catch an empty file and most truncated text files (every text file this package writes
ends with a newline).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from bayes_stenosis.run.paths import MANIFEST_NAME, temporary_sibling

#: The manifest key holding the checksums.
FILES_KEY = "output_files"

#: Files that end with a newline when complete (what pandas, json and the templates write).
TEXT_SUFFIXES = (".csv", ".json", ".md", ".html", ".toml")

#: How the first bytes of a complete file look, per suffix (NetCDF-4 is HDF5; parquet starts with PAR1).
SIGNATURES = {".nc": b"\x89HDF\r\n\x1a\n", ".parquet": b"PAR1", ".png": b"\x89PNG\r\n\x1a\n"}

CHUNK = 1 << 20


@dataclass(frozen=True)
class FileProblem:
    """One damaged or missing file of a run folder."""

    path: Path
    problem: str

    def line(self) -> str:
        return f"{self.path}: {self.problem}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: Path) -> dict:
    """``{"sha256": ..., "bytes": ...}`` of one file."""
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def relative_name(folder: Path, path: Path) -> str:
    return path.relative_to(folder).as_posix()


def record_folder(folder: Path, *, skip: tuple[str, ...] = ()) -> dict[str, dict]:
    """The checksum of every file under ``folder`` except the manifest and the names in ``skip``, sorted."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = relative_name(folder, path)
        if name != MANIFEST_NAME and name not in skip:
            out[name] = file_record(path)
    return out


def structural_problem(path: Path) -> str | None:
    """What is visibly wrong with a file without a checksum: empty, no final newline, wrong signature."""
    try:
        size = path.stat().st_size
        if size == 0:
            return "empty file (0 bytes)"
        with open(path, "rb") as handle:
            head = handle.read(8)
            handle.seek(-1, 2)
            last = handle.read(1)
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    signature = SIGNATURES.get(path.suffix)
    if signature is not None and not head.startswith(signature[: len(head)]):
        return f"not a {path.suffix} file (its first bytes are wrong)"
    if path.suffix in TEXT_SUFFIXES and last != b"\n":
        return "truncated (it does not end with a newline)"
    return None


def check_file(folder: Path, name: str, recorded: dict | None) -> str | None:
    """What is wrong with ``folder/name`` against its record (``None``: nothing).

    ``recorded`` is the manifest's ``output_files`` table, or None for a run without checksums. A file the
    table does not list (added by hand, or by an older version) gets the structural checks only.
    """
    path = folder / name
    entry = None if recorded is None else recorded.get(name)
    if not path.is_file():
        return "missing (the manifest records it)" if entry is not None else "missing"
    if entry is None:
        return structural_problem(path)
    size = path.stat().st_size
    if size != entry["bytes"]:
        kind = "truncated" if size < entry["bytes"] else "damaged"
        return f"{kind}: {size} bytes, the manifest records {entry['bytes']}"
    if sha256_file(path) != entry["sha256"]:
        return "damaged: its SHA-256 differs from the one in the manifest"
    return None


def verify_folder(folder: Path, manifest: dict) -> list[FileProblem]:
    """Every problem of a run folder: each recorded file checked against its digest, and each file the
    manifest does not record checked for structure (all files, for a run without checksums)."""
    recorded = manifest.get(FILES_KEY)
    names = set(recorded or ())
    names |= {relative_name(folder, p) for p in folder.rglob("*") if p.is_file()}
    names.discard(MANIFEST_NAME)
    problems = []
    for name in sorted(names):
        problem = check_file(folder, name, recorded)
        if problem is not None:
            problems.append(FileProblem(folder / name, problem))
    return problems


def add_records(manifest_path: Path, folder: Path, names: list[str]) -> None:
    """Record (or re-record) the checksums of ``names`` in the manifest, replacing it atomically.

    A manifest without checksums stays without: recording a few files would make the others look
    unrecorded rather than unverifiable.
    """
    manifest = json.loads(manifest_path.read_text())
    if FILES_KEY not in manifest:
        return
    for name in names:
        manifest[FILES_KEY][name] = file_record(folder / name)
    manifest[FILES_KEY] = dict(sorted(manifest[FILES_KEY].items()))
    tmp = temporary_sibling(manifest_path)
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(manifest_path)
