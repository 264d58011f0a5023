"""Work run beside the sampler in a forked process: a fit's prior draws while its posterior is sampled.

A fit's prior draws (prior predictive, the statement checks' and the decision table's prior draws)
depend only on the model and their own child seeds, not on the posterior, and they run one draw at a
time in Python on one core; the posterior sampler's chains need both cores only once sampling has
started. A child process forked before the compile draws them (it inherits the model, nothing is
pickled but the results), in parallel with the compile and loading of the sampler and the sampling;
the draws are the same numbers as drawn in the process itself (same seeds, same compiled functions).
Threads would not help: the draws hold the GIL.

Without ``fork`` (macOS, Windows default start methods are not used: ``fork`` alone shares the model
without pickling it) :func:`start_in_background` runs the work at once in this process.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable


class BackgroundWork:
    """A call run in a forked child process; :meth:`result` waits for it and returns its value.

    The child sends back ``(ok, value, seconds)``; an exception raised in the child is re-raised by
    :meth:`result`, and a child that dies without answering raises ``RuntimeError``.
    """

    def __init__(self, work: Callable[[], object]) -> None:
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_run_and_send, args=(work, send), daemon=True)
        self._process.start()
        send.close()  # the child holds the sending end; a dead child then reads as EOF here
        self.seconds: float | None = None
        self._answer: tuple[bool, object] | None = None

    def result(self) -> object:
        """The call's value, once the child has sent it (the child's exception re-raised); later calls
        return the same value."""
        if self._answer is None:
            try:
                ok, value, self.seconds = self._receive.recv()
            except EOFError:
                self._process.join()
                code = self._process.exitcode
                raise RuntimeError(f"the background process ended without a result (exit code {code})") from None
            finally:
                self._receive.close()
                self._process.join()
            self._answer = (ok, value)
        ok, value = self._answer
        if not ok:
            raise value
        return value


class DoneWork:
    """A call already made in this process (no ``fork``), with the same interface as :class:`BackgroundWork`."""

    def __init__(self, work: Callable[[], object]) -> None:
        start = time.perf_counter()
        self._value = work()
        self.seconds = time.perf_counter() - start

    def result(self) -> object:
        return self._value


def _run_and_send(work: Callable[[], object], send) -> None:
    # One BLAS thread: the parent's sampler already runs a chain per core (nutpie_sample limits its BLAS
    # to one thread for the same reason); a precaution, not a measured gain: the draws do not depend on
    # it (tests/run/test_priors.py compares them with in-process draws).
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            value = work()
    except BaseException as err:  # noqa: BLE001 - sent to the parent, which re-raises it
        send.send((False, err, time.perf_counter() - start))
    else:
        send.send((True, value, time.perf_counter() - start))
    finally:
        send.close()


def load_c_module_index() -> None:
    """Read pytensor's index of compiled C modules now.

    The first C function a process compiles or loads makes pytensor read the key of every module in its
    compile directory (about 1,000 on a machine that has fitted many models: seconds). A fit that starts
    its prior draws in a forked process calls this just before the fork: the child inherits the index, so
    it is read once, not once per process (a study with little to sample then waited for the child's read
    and did its own).
    """
    from pytensor.link.c.basic import get_module_cache

    get_module_cache()


def can_fork() -> bool:
    """Whether this platform offers the ``fork`` start method (Linux; not Windows, not by default macOS)."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def start_in_background(work: Callable[[], object], *, enabled: bool = True) -> BackgroundWork | DoneWork:
    """``work()`` in a forked child process when ``enabled`` and ``fork`` is available, else here and now."""
    if enabled and can_fork():
        return BackgroundWork(work)
    return DoneWork(work)
