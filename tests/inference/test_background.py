"""``inference.background``: work in a forked process returns what it would return here, and its errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bayes_stenosis.inference.background import BackgroundWork, DoneWork, can_fork, start_in_background

needs_fork = pytest.mark.skipif(not can_fork(), reason="fork is not available on this platform")


def _draws() -> tuple[int, np.ndarray]:
    return os.getpid(), np.random.default_rng(5).normal(size=1000)


@needs_fork
def test_the_work_runs_in_another_process_and_returns_its_value():
    work = start_in_background(_draws)
    assert isinstance(work, BackgroundWork)
    pid, values = work.result()
    assert pid != os.getpid()
    np.testing.assert_array_equal(values, _draws()[1])
    assert work.result()[0] == pid  # the same answer again, no second wait
    assert work.seconds is not None and work.seconds >= 0


@needs_fork
def test_an_error_in_the_child_is_raised_here():
    def fails():
        raise ValueError("bad prior")

    work = start_in_background(fails)
    with pytest.raises(ValueError, match="bad prior"):
        work.result()


@needs_fork
def test_a_child_that_dies_without_answering_is_an_error():
    work = start_in_background(lambda: os._exit(3))
    with pytest.raises(RuntimeError, match="exit code 3"):
        work.result()


def test_disabled_runs_here_and_now():
    work = start_in_background(_draws, enabled=False)
    assert isinstance(work, DoneWork)
    assert work.result()[0] == os.getpid()
