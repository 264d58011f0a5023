"""Shared fixtures. Slow statistical checks run only with ``--slow`` (CI passes it)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False, help="also run tests marked slow")
    parser.addoption(
        "--release",
        action="store_true",
        default=False,
        help="also run tests marked release: full statistical runs not yet measured inside CI's time budget",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow = config.getoption("--slow") or config.getoption("--release")
    release = config.getoption("--release")
    skip_slow = pytest.mark.skip(reason="slow statistical check: run with --slow")
    skip_release = pytest.mark.skip(
        reason="release check, not yet measured inside CI's 90-minute budget on 2 cores: run with --release"
    )
    for item in items:
        if "release" in item.keywords and not release:
            item.add_marker(skip_release)
        elif "slow" in item.keywords and not slow:
            item.add_marker(skip_slow)


@pytest.fixture(autouse=True)
def _quiet_blas_warning():
    warnings.filterwarnings("ignore", message=".*PyTensor could not link to a BLAS.*")
    yield


@pytest.fixture(scope="session")
def pristine_run(tmp_path_factory) -> Path:
    """A complete run folder written by ``write_run`` from a synthetic fit (no sampling, about a second):
    for the tests of run folders and of the commands that read them. Copy it (``run_copy``) to damage it."""
    from bayes_stenosis.run import write_run
    from bayes_stenosis.testing import synthetic_fit, write_study

    root = tmp_path_factory.mktemp("synthetic_run")
    rows = [
        {"outcome": o, "time": t, "measure": "change", "direction": "new_minus_reference", "estimate": -1, "se": 3}
        for o in ("ODI", "VAS")
        for t in (4, 8)
    ]
    study = write_study(
        root / "study",
        outcomes={
            "ODI": {"instrument": "ODI", "scale_max": 100, "margin": 10, "reference_sd": 16},
            "VAS": {"instrument": "VAS", "scale_max": 100, "margin": 15, "reference_sd": 20},
        },
        follow_up=(4.0, 8.0),
        rows={"contrasts.csv": rows},
    )
    return write_run(synthetic_fit(study), root / "out")


@pytest.fixture
def run_copy(pristine_run, tmp_path) -> Path:
    """A fresh copy of :func:`pristine_run` at ``tmp_path/out/test_study/<name>`` (its checksums still hold)."""
    destination = tmp_path / "out" / "test_study" / pristine_run.name
    shutil.copytree(pristine_run, destination)
    return destination
