"""Shared fixtures. Slow statistical checks run only with ``--slow`` (CI passes it)."""

from __future__ import annotations

import warnings

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
