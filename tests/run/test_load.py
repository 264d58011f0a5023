"""Issue 23, reproduction 5 at the level of the reader (``run/load.py``, ``run/integrity.py``): every file
a run folder holds is checksummed in its manifest, and a damaged one is a one-line error naming it.
Runs come from ``pristine_run`` (``write_run`` of a synthetic fit, no sampling)."""

from __future__ import annotations

import json
import warnings

import pytest

from bayes_stenosis.errors import RunFolderError, UnverifiedRunWarning
from bayes_stenosis.run import atomic_run_folder, load_run, published_file, sha256_file


def truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def drop_checksums(run) -> None:
    """Make ``run`` look like a run written before checksums were recorded."""
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["output_files"]
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def test_manifest_records_sha256_and_size_of_every_file_but_itself(pristine_run):
    files = json.loads((pristine_run / "manifest.json").read_text())["output_files"]
    on_disk = sorted(p.relative_to(pristine_run).as_posix() for p in pristine_run.rglob("*") if p.is_file())
    assert sorted(files) == [name for name in on_disk if name != "manifest.json"]
    for name in ("posterior.nc", "decisions.csv", "inputs/study/study.toml"):
        path = pristine_run / name
        assert files[name] == {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    assert load_run(pristine_run).verify() == []


def test_zero_byte_decisions_csv_names_the_file(run_copy):
    # used to be a pandas EmptyDataError traceback
    (run_copy / "decisions.csv").write_bytes(b"")
    with pytest.raises(RunFolderError) as err:
        _ = load_run(run_copy).decisions
    assert str(err.value).startswith(f"{run_copy / 'decisions.csv'}: truncated: 0 bytes, the manifest records")


def test_truncated_decisions_csv_is_not_read_silently(run_copy):
    # cut at a line end: pandas used to read it, with a row whose decision was nan
    path = run_copy / "decisions.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: len(lines) // 2]))
    with pytest.raises(RunFolderError, match="decisions.csv: truncated"):
        _ = load_run(run_copy).decisions


def test_truncated_posterior_nc_names_the_file(run_copy):
    truncate(run_copy / "posterior.nc")
    with pytest.raises(RunFolderError, match="posterior.nc: truncated"):
        _ = load_run(run_copy).idata


def test_a_changed_byte_of_the_same_size_is_caught_by_the_digest(run_copy):
    path = run_copy / "contrasts.csv"
    data = bytearray(path.read_bytes())
    data[-3] = ord("7") if data[-3] != ord("7") else ord("8")
    path.write_bytes(bytes(data))
    with pytest.raises(RunFolderError, match="contrasts.csv: damaged: its SHA-256 differs"):
        _ = load_run(run_copy).contrasts


def test_verify_lists_every_damaged_or_missing_file(run_copy):
    (run_copy / "decisions.csv").write_bytes(b"")
    (run_copy / "approximations.json").unlink()
    problems = {p.path.name: p.problem for p in load_run(run_copy).verify()}
    assert set(problems) == {"decisions.csv", "approximations.json"}
    assert problems["approximations.json"] == "missing (the manifest records it)"
    with pytest.raises(RunFolderError, match=r"and 1 more file"):
        load_run(run_copy).require_intact()


def test_a_run_without_checksums_loads_with_a_warning_and_structural_checks(run_copy):
    drop_checksums(run_copy)
    with pytest.warns(UnverifiedRunWarning, match="written without checksums"):
        run = load_run(run_copy)
    assert len(run.decisions) > 0  # an intact old run still reads
    (run_copy / "decisions.csv").write_bytes(b"")
    path = run_copy / "contrasts.csv"
    path.write_bytes(path.read_bytes()[:-7])  # cut mid-line: no final newline
    truncate(run_copy / "posterior.nc", keep=0.6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedRunWarning)
        run = load_run(run_copy)
    with pytest.raises(RunFolderError, match="decisions.csv: empty file"):
        _ = run.decisions
    with pytest.raises(RunFolderError, match="contrasts.csv: truncated"):
        _ = run.contrasts
    with pytest.raises(RunFolderError, match="posterior.nc: unreadable NetCDF"):
        _ = run.idata


def test_a_damaged_manifest_is_a_one_line_error(run_copy):
    truncate(run_copy / "manifest.json")
    with pytest.raises(RunFolderError, match="manifest.json: unreadable JSON"):
        load_run(run_copy)


def test_files_of_a_sibling_folder_are_checked_against_its_own_manifest(tmp_path):
    # the report shows ../sensitivity/sensitivity.csv of a run: checked against the sweep's manifest
    folder = tmp_path / "sensitivity"
    with atomic_run_folder(folder, overwrite=False, what="sensitivity folder") as tmp:
        (tmp / "sensitivity.csv").write_text("a,b\n1,2\n")
        (tmp / "manifest.json").write_text("{}\n")
    assert published_file(folder / "sensitivity.csv") == folder / "sensitivity.csv"
    assert published_file(folder / "sensitivity.png") is None
    (folder / "sensitivity.csv").write_text("a,b\n1,3\n")
    with pytest.raises(RunFolderError, match="sensitivity.csv: damaged"):
        published_file(folder / "sensitivity.csv")


def test_reread_keeps_the_draws_read_and_reads_the_manifest_again(pristine_run, tmp_path):
    """The writer's report reuses the staged draws its plots read, but sees the manifest as rewritten
    after the plots (their timings)."""
    import json
    import shutil

    from bayes_stenosis.run import RunFolder

    folder = tmp_path / "staged"
    shutil.copytree(pristine_run, folder)
    staged = RunFolder(folder, staging=True)
    idata = staged.idata
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["timings_seconds"] = {"plots": 1.25}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert staged.manifest.get("timings_seconds") != {"plots": 1.25}  # cached: read before the rewrite
    again = staged.reread()
    assert again.manifest["timings_seconds"] == {"plots": 1.25}
    assert again.idata is idata and again.staging


def test_a_run_result_reads_its_draws_from_the_published_folder(pristine_run):
    """``fit(...)`` returns a RunResult; its ``idata`` is the folder's ``posterior.nc`` (the tables' draws)."""
    import pandas as pd

    from bayes_stenosis.run import RunFolder, RunResult

    empty = pd.DataFrame()
    result = RunResult(pristine_run, empty, empty, empty, "ok", "ok", {})
    expected = RunFolder(pristine_run).idata.posterior["delta_natural"]
    assert result.idata.posterior["delta_natural"].equals(expected)
