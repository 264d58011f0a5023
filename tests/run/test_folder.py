"""Issue 23, reproductions 1 and 6 at the level of the primitives (``run/folder.py``, ``run/lock.py``,
``run/stale.py``): two real processes writing one run folder, a writer killed mid-way, the publish
re-check. The writers here do not sample: each is a subprocess inside ``atomic_run_folder``, held
there until the test lets it go, so the order of events is fixed and the tests take seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bayes_stenosis.errors import DestinationLockedError, OutputPathError, RunFolderError
from bayes_stenosis.run import atomic_run_folder, check_run_folder, clean_leftovers, destination_lock, lock_path
from bayes_stenosis.run import lock as lock_module
from bayes_stenosis.run.stale import INCOMPLETE_MARKER

#: A writer: enters atomic_run_folder(DEST), writes a manifest naming TAG, says "inside", waits for a line
#: on stdin, then publishes. Refusals are printed as "error: ..." with exit 2, as the CLI does.
WRITER = r"""
import sys
from pathlib import Path
from bayes_stenosis.errors import InputError
from bayes_stenosis.run import atomic_run_folder, write_json
dest, tag = Path(sys.argv[1]), sys.argv[2]
try:
    with atomic_run_folder(dest, overwrite=len(sys.argv) > 3) as tmp:
        write_json(tmp / "manifest.json", {"writer": tag})
        (tmp / "posterior.nc").write_bytes(b"not really NetCDF " + tag.encode())
        print("inside", flush=True)
        sys.stdin.readline()
except InputError as exc:
    print(f"error: {exc.one_line()}", flush=True)
    sys.exit(2)
print("published", flush=True)
"""


def start_writer(dest: Path, tag: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(dest), tag, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(proc: subprocess.Popen, word: str) -> None:
    line = proc.stdout.readline()
    assert line.strip() == word, line + proc.stderr.read()


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate(input="go\n", timeout=120)
    return proc.returncode, out + err


def writer_of(dest: Path) -> str:
    return json.loads((dest / "manifest.json").read_text())["writer"]


def test_two_processes_one_run_folder_the_second_is_refused_and_the_first_published(tmp_path):
    # reproduction 1: both used to exit 0 and one run was silently gone
    dest = tmp_path / "out-race" / "test_study" / "race"
    first = start_writer(dest, "first")
    wait_for(first, "inside")  # holds the lock now, its run not yet published
    code, out = finish(start_writer(dest, "second"))
    assert code == 2, out
    assert out.startswith(f"error: {dest}: another bayes-stenosis process (PID {first.pid}"), out
    assert "is writing this run folder" in out and len(out.strip().splitlines()) == 1
    code, out = finish(first)
    assert code == 0 and "published" in out, out
    assert writer_of(dest) == "first"
    # and after the first one is done, a second writer without --overwrite is refused: nothing lost
    code, out = finish(start_writer(dest, "third"))
    assert code == 2 and "already exists" in out and "--overwrite" in out, out
    assert writer_of(dest) == "first"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["race"]  # no lock file, no temporary left


def test_a_killed_writer_leaves_an_unfinished_folder_that_is_never_a_run_and_is_cleaned(tmp_path):
    # reproduction 6: the hidden folder (with a manifest) looked like a run and stayed forever
    dest = tmp_path / "out" / "test_study" / "killed"
    proc = start_writer(dest, "killed")
    wait_for(proc, "inside")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    (leftover,) = [p for p in dest.parent.iterdir() if p.name.startswith(".killed.tmp-")]
    assert (leftover / "manifest.json").is_file() and (leftover / INCOMPLETE_MARKER).is_file()
    (leftover / "diagnostics.csv").write_text("x\n")  # even with every required file it is not a run
    with pytest.raises(RunFolderError, match="an unfinished run"):
        check_run_folder(leftover)
    # the kernel released the dead writer's lock: the next writer is not refused, and cleans up
    with atomic_run_folder(dest, overwrite=False) as tmp:
        (tmp / "manifest.json").write_text("{}\n")
    assert not leftover.exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["killed"]


def test_clean_removes_leftovers_of_dead_writers_and_keeps_those_of_live_ones(tmp_path):
    parent = tmp_path / "out" / "test_study"
    dead = start_writer(parent / "dead", "dead")
    live = start_writer(parent / "live", "live")
    wait_for(dead, "inside")
    wait_for(live, "inside")
    dead.send_signal(signal.SIGKILL)
    dead.wait(timeout=30)
    stale_file = parent / f".decisions.csv.tmp-{2**22 + 7}-abcd"  # a PID above the kernel's maximum: dead
    stale_file.write_text("partial")
    report = clean_leftovers(tmp_path / "out")
    removed = sorted(p.name for p in report.removed)
    assert any(name.startswith(".dead.tmp-") for name in removed) and stale_file.name in removed
    assert any(p.name.startswith(".live.tmp-") for p, _ in report.kept)
    code, out = finish(live)
    assert code == 0, out
    assert writer_of(parent / "live") == "live"


def test_a_run_that_appears_during_the_write_is_never_replaced(tmp_path):
    # a program that takes no lock (an older version, a copy by hand) puts a run in place meanwhile
    dest = tmp_path / "runs" / "r"
    with pytest.raises(OutputPathError, match="already exists"), atomic_run_folder(dest, overwrite=False) as tmp:
        (tmp / "manifest.json").write_text('{"writer": "new"}\n')
        dest.mkdir()
        (dest / "manifest.json").write_text('{"writer": "foreign"}\n')
    assert writer_of(dest) == "foreign"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["r"]


def test_overwrite_replaces_only_after_the_new_run_is_complete(tmp_path):
    dest = tmp_path / "r"
    with atomic_run_folder(dest, overwrite=False) as tmp:
        (tmp / "manifest.json").write_text('{"writer": "old"}\n')
    with pytest.raises(RuntimeError), atomic_run_folder(dest, overwrite=True) as tmp:
        (tmp / "manifest.json").write_text('{"writer": "broken"}\n')
        raise RuntimeError("the sampler died")
    assert writer_of(dest) == "old"
    with atomic_run_folder(dest, overwrite=True) as tmp:
        (tmp / "manifest.json").write_text('{"writer": "new"}\n')
    assert writer_of(dest) == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_overwrite_never_replaces_a_folder_this_program_did_not_write(tmp_path):
    home = tmp_path / "documents"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputPathError, match="did not write"), atomic_run_folder(home, overwrite=True):
        pass
    assert (home / "thesis.tex").read_text() == "years of work"


def test_the_manifest_records_every_file_and_is_written_last(tmp_path):
    dest = tmp_path / "r"
    with atomic_run_folder(dest, overwrite=False) as tmp:
        (tmp / "manifest.json").write_text('{"writer": "me"}\n')
        (tmp / "plots").mkdir()
        (tmp / "plots" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nxyz")
        (tmp / "decisions.csv").write_text("a,b\n1,2\n")
    files = json.loads((dest / "manifest.json").read_text())["output_files"]
    assert sorted(files) == ["decisions.csv", "plots/a.png"]
    assert files["decisions.csv"]["bytes"] == 8 and len(files["decisions.csv"]["sha256"]) == 64


# ---------------------------------------------------------------------------------------------
# the lock itself
# ---------------------------------------------------------------------------------------------


def test_lock_is_reentrant_in_one_process_and_removed_on_release(tmp_path):
    dest = tmp_path / "r"
    with destination_lock(dest), destination_lock(dest):
        assert lock_path(dest).is_file()
        owner = json.loads(lock_path(dest).read_text())
        assert owner["pid"] == os.getpid()
    assert not lock_path(dest).exists()


def test_a_lock_file_whose_owner_is_dead_is_taken_over(tmp_path, monkeypatch):
    dest = tmp_path / "r"
    # what a writer killed on a system without flock leaves: the file, naming a PID that is gone
    monkeypatch.setattr(lock_module, "fcntl", None)
    lock_path(dest).write_text(json.dumps({"pid": 2**22 + 7, "host": socket.gethostname()}))
    with destination_lock(dest):
        assert json.loads(lock_path(dest).read_text())["pid"] == os.getpid()
    # a live owner is respected
    lock_path(dest).write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(), "started_utc": "t"}))
    with pytest.raises(DestinationLockedError, match=f"PID {os.getppid()} since t"), destination_lock(dest):
        pass


def test_a_displaced_run_is_put_back_when_its_replacement_never_arrived(tmp_path):
    dest = tmp_path / "r"
    displaced = tmp_path / ".r.old-120000000000"
    displaced.mkdir()
    (displaced / "manifest.json").write_text("{}\n")
    report = clean_leftovers(tmp_path)
    assert report.restored == [(displaced, dest)] and (dest / "manifest.json").is_file()
