"""Issue 23 through the command line: every numbered reproduction (1-6) that failed before, now a
one-line error with exit 2 (or the documented behaviour), and nothing already written lost.

Runs are copies of ``pristine_run`` (a synthetic fit written by ``write_run``; no sampling). The one
test that really samples (two ``fit`` processes racing) is marked slow.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bayes_stenosis.cli import app
from bayes_stenosis.run import load_run
from bayes_stenosis.testing import write_study

runner = CliRunner()

#: Holds the lock of DEST (argv[1]) until a line arrives on stdin.
LOCK_HOLDER = r"""
import sys
from bayes_stenosis.run import destination_lock
with destination_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def one_line_error(result, location: Path | str, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {location}: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def no_sampling(monkeypatch):
    """Fail the test if a fit starts sampling (the refusals must come first)."""

    def refuse(*args, **kwargs):
        raise AssertionError("sampling started")

    monkeypatch.setattr(importlib.import_module("bayes_stenosis.run.write"), "fit_study", refuse)
    monkeypatch.setattr(importlib.import_module("bayes_stenosis.analyses.sensitivity.runner"), "fit_study", refuse)


@pytest.fixture
def study(tmp_path) -> Path:
    row = {"outcome": "ODI", "time": 4, "measure": "change", "direction": "new_minus_reference", "estimate": -2}
    return write_study(tmp_path / "study", rows={"contrasts.csv": [row | {"se": 3}]})


# ---------------------------------------------------------------------------------------------
# 1. a second writer of the same run folder is refused, before sampling
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["fit", "sensitivity"])
def test_a_second_writer_is_refused_while_another_process_holds_the_folder(tmp_path, study, no_sampling, command):
    out = tmp_path / "out-race"
    dest = out / "test_study" / ("race" if command == "fit" else "sensitivity")
    dest.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(dest)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        args = [command, study, "--out", out] + (["--name", "race"] if command == "fit" else [])
        one_line_error(invoke(*args), dest, f"another bayes-stenosis process (PID {holder.pid}", "is writing")
    finally:
        holder.communicate("go\n", timeout=60)
    assert not dest.exists()


# ---------------------------------------------------------------------------------------------
# 2 and 3. output paths are checked before any work
# ---------------------------------------------------------------------------------------------


def test_fit_out_under_a_regular_file_fails_before_sampling(tmp_path, study, no_sampling):
    (tmp_path / "notadir").write_text("x\n")
    result = invoke("fit", study, "--out", tmp_path / "notadir" / "sub", "--no-progress")
    one_line_error(result, tmp_path / "notadir", "is a file, not a folder")
    assert (tmp_path / "notadir").read_text() == "x\n"


def test_fit_into_an_existing_file_name_fails_before_sampling(tmp_path, study, no_sampling):
    (tmp_path / "out" / "test_study").mkdir(parents=True)
    (tmp_path / "out" / "test_study" / "r").write_text("keep\n")
    result = invoke("fit", study, "--out", tmp_path / "out", "--name", "r", "--overwrite")
    one_line_error(result, tmp_path / "out" / "test_study" / "r", "exists and is not a folder")


@pytest.mark.parametrize(
    "args",
    [
        ("export", "{run}", "--format", "csv", "--out", "{tmp}/notadir/x.csv"),
        ("summarize", "{run}", "--csv", "{tmp}/notadir/t.csv"),
        ("summarize", "{run}", "--markdown", "{tmp}/notadir/t.md"),
        ("report", "{run}", "--out", "{tmp}/notadir/report.html"),
    ],
    ids=["export", "summarize-csv", "summarize-markdown", "report"],
)
def test_outputs_under_a_regular_file_are_one_line_errors(run_copy, tmp_path, args):
    (tmp_path / "notadir").write_text("x\n")
    result = invoke(*(a.format(run=run_copy, tmp=tmp_path) for a in args))
    one_line_error(result, tmp_path / "notadir", "is a file, not a folder")


def test_export_into_a_missing_folder_creates_it(run_copy, tmp_path):
    target = tmp_path / "new" / "deeper" / "draws.csv"
    result = invoke("export", run_copy, "--format", "csv", "--out", target)
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == (run_copy / "draws_contrasts.csv").read_bytes()


# ---------------------------------------------------------------------------------------------
# 4. nothing is overwritten without --overwrite, the same way everywhere
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("report", "{run}", "--out", "{target}"),
        ("export", "{run}", "--format", "json", "--out", "{target}"),
        ("summarize", "{run}", "--csv", "{target}"),
        ("summarize", "{run}", "--markdown", "{target}"),
    ],
    ids=["report", "export", "summarize-csv", "summarize-markdown"],
)
def test_an_existing_output_file_is_kept_without_overwrite_and_replaced_with_it(run_copy, tmp_path, args):
    target = tmp_path / "existing.txt"
    target.write_text("precious\n")
    filled = [a.format(run=run_copy, target=target) for a in args]
    one_line_error(invoke(*filled), target, "already exists; pass --overwrite to replace it")
    assert target.read_text() == "precious\n"
    result = invoke(*filled, "--overwrite")
    assert result.exit_code == 0, result.output
    assert target.read_text() != "precious\n"


def test_report_writes_run_report_once_then_needs_overwrite(run_copy):
    first = invoke("report", run_copy)
    assert first.exit_code == 0, first.output
    page = run_copy / "report.html"
    written = page.read_bytes()
    one_line_error(invoke("report", run_copy), page, "already exists", "--overwrite")
    assert page.read_bytes() == written
    again = invoke("report", run_copy, "--overwrite")
    assert again.exit_code == 0, again.output
    run = load_run(run_copy)
    assert "report.html" in run.checksums and "plots/forest.png" in run.checksums
    assert run.verify() == []  # the rewritten report and the plots drawn for it are recorded


# ---------------------------------------------------------------------------------------------
# 5. damaged outputs are named, never read or exported
# ---------------------------------------------------------------------------------------------


def test_zero_byte_decisions_csv(run_copy):
    (run_copy / "decisions.csv").write_bytes(b"")
    one_line_error(invoke("summarize", run_copy), run_copy / "decisions.csv", "truncated: 0 bytes")


def test_truncated_decisions_csv(run_copy):
    path = run_copy / "decisions.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-2]))
    one_line_error(invoke("summarize", run_copy), path, "truncated")


def test_truncated_posterior_nc_in_report_and_export(run_copy, tmp_path):
    path = run_copy / "posterior.nc"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    one_line_error(invoke("report", run_copy), path, "truncated")
    assert not (run_copy / "report.html").exists()
    target = tmp_path / "posterior-copy.nc"
    one_line_error(invoke("export", run_copy, "--format", "netcdf", "--out", target), path, "truncated")
    assert not target.exists() and list(tmp_path.glob(".posterior-copy.nc.tmp-*")) == []


def test_diagnose_reads_checked_files_and_verify_checks_the_whole_run(run_copy):
    assert invoke("diagnose", run_copy, "--verify").exit_code == 0
    plot_free = invoke("diagnose", run_copy, "--verify").output
    assert "all" in plot_free and "files match the SHA-256" in plot_free
    (run_copy / "draws_contrasts.parquet").write_bytes(b"PAR1")  # not read by diagnose...
    assert invoke("diagnose", run_copy).exit_code == 0
    result = invoke("diagnose", run_copy, "--verify")  # ...but --verify checks everything
    assert result.exit_code == 2
    assert "damaged:" in result.output and "draws_contrasts.parquet" in result.output
    assert result.output.strip().splitlines()[-1].startswith(f"error: {run_copy}: 1 damaged or missing file(s)")
    (run_copy / "diagnostics.csv").write_text("quantity,mean\n")
    one_line_error(invoke("diagnose", run_copy), run_copy / "diagnostics.csv", "truncated")


def test_a_run_without_checksums_still_reads_with_a_warning(run_copy):
    manifest = json.loads((run_copy / "manifest.json").read_text())
    del manifest["output_files"]
    (run_copy / "manifest.json").write_text(json.dumps(manifest) + "\n")
    result = invoke("summarize", run_copy)
    assert result.exit_code == 0, result.output
    assert "warning: " in result.output and "written without checksums" in result.output
    (run_copy / "decisions.csv").write_bytes(b"")
    assert "decisions.csv: empty file (0 bytes)" in invoke("summarize", run_copy).output


# ---------------------------------------------------------------------------------------------
# 6. leftovers of killed runs
# ---------------------------------------------------------------------------------------------


def test_clean_removes_an_unfinished_folder_and_readers_refuse_it(run_copy):
    leftover = run_copy.with_name(f".{run_copy.name}.tmp-abcd1234")
    run_copy.rename(leftover)  # a complete-looking folder, as a fit killed while writing leaves
    (leftover / ".incomplete").write_text(json.dumps({"pid": 2**22 + 7}) + "\n")
    one_line_error(invoke("summarize", leftover), leftover, "an unfinished run", "bayes-stenosis clean")
    dry = invoke("clean", leftover.parent.parent, "--dry-run")
    assert dry.exit_code == 0 and f"would remove {leftover}" in dry.output and leftover.exists()
    result = invoke("clean", leftover.parent.parent)
    assert result.exit_code == 0 and f"removed {leftover}" in result.output
    assert not leftover.exists()
    assert "nothing to clean" in invoke("clean", leftover.parent.parent).output


# ---------------------------------------------------------------------------------------------
# 1, for real: two fits racing for one run folder (the one test here that samples)
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_real_fits_into_the_same_run_folder(tmp_path, study):
    exe = Path(sys.executable).with_name("bayes-stenosis")
    common = ["--draws", "50", "--tune", "50", "--chains", "1", "--no-plots", "--no-report", "--no-progress"]
    procs = [
        subprocess.Popen(
            [str(exe), "fit", str(study), *common, "--seed", str(seed), "--name", "race", "--out", str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (5, 6)
    ]
    results = [(p.wait(timeout=900), p.stdout.read() + p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(out for code, out in results if code == 2)
    assert "is writing this run folder" in loser or "already exists" in loser, loser
    winner_seed = next(seed for (code, _), seed in zip(results, (5, 6), strict=True) if code == 0)
    run = load_run(tmp_path / "test_study" / "race")
    assert run.manifest["sampler"]["seed"] == winner_seed and run.verify() == []
    assert sorted(p.name for p in (tmp_path / "test_study").iterdir()) == ["race"]


def test_a_sweep_prints_one_line_per_fit_with_its_duration(monkeypatch, study, tmp_path):
    """A piped sweep's log shows its progress: each fit's closing line, the last one even when the sweep fails."""
    from bayes_stenosis.errors import InputError

    def two_fits_then_stop(*args, status, **kwargs):
        status("fit 1/2: prior a")
        status("fit 2/2: prior b")
        raise InputError("grid", "stopped after two fits")

    monkeypatch.setattr(importlib.import_module("bayes_stenosis.analyses"), "run_sensitivity", two_fits_then_stop)
    result = invoke("sensitivity", study, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert [line.split(": ")[:2] for line in lines[:2]] == [["fit 1/2", "prior a"], ["fit 2/2", "prior b"]]
    assert all(line.endswith(" s") for line in lines[:2]), lines
    assert lines[-1].startswith("error: grid: stopped after two fits")
