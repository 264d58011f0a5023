"""Shared fixtures. Slow statistical checks run only with ``--slow`` (CI passes it)."""

from __future__ import annotations

import warnings

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow statistical check: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _quiet_blas_warning():
    warnings.filterwarnings("ignore", message=".*PyTensor could not link to a BLAS.*")
    yield
