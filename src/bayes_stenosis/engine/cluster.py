"""Where the trials run: a ``LocalCluster`` of single-threaded worker processes on this machine, or an
existing Dask scheduler (``--scheduler ADDRESS`` / ``DASK_SCHEDULER_ADDRESS``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


@dataclass(frozen=True)
class ClusterInfo:
    """What ran the trials, for the manifest: ``local`` (with its worker count) or a scheduler address."""

    kind: str
    address: str
    n_workers: int

    def as_dict(self) -> dict:
        return {"kind": self.kind, "address": self.address, "n_workers": self.n_workers}


@contextmanager
def dask_client(
    *, scheduler: str | None = None, workers: int | None = None, processes: bool = True
) -> Iterator[tuple[object, ClusterInfo]]:
    """A ``distributed.Client`` and what it is connected to, closed (with its cluster) on exit.

    Parameters
    ----------
    scheduler
        Address of a running scheduler (``tcp://host:8786``); default ``$DASK_SCHEDULER_ADDRESS``; when
        neither is set, a ``LocalCluster`` is started on this machine.
    workers
        Worker count of the local cluster (default: the CPUs this process may use). Ignored with a
        scheduler, whose workers are whatever the cluster has.
    processes
        Local workers as processes (the default: a fit holds the GIL) or threads of this process (tests).

    Each local worker has one thread: a trial is one core's work, and numpy/BLAS threads inside it
    would only compete with the other workers (Dask's nanny sets ``OMP_NUM_THREADS=1`` and friends).
    """
    from distributed import Client, LocalCluster

    scheduler = scheduler or os.environ.get(SCHEDULER_ENV) or None
    if scheduler:
        client = Client(scheduler)
        try:
            yield client, ClusterInfo("scheduler", scheduler, len(client.scheduler_info()["workers"]))
        finally:
            client.close()
        return
    n = workers or len(os.sched_getaffinity(0))
    if n < 1:
        raise ValueError(f"workers must be >= 1 (got {n})")
    # the scheduler's and workers' INFO lines would interleave with the command's own output
    for name in ("distributed", "distributed.scheduler", "distributed.worker", "distributed.nanny"):
        logging.getLogger(name).setLevel(logging.WARNING)
    cluster = LocalCluster(
        n_workers=n, threads_per_worker=1, processes=processes, dashboard_address=None, silence_logs=logging.WARNING
    )
    client = Client(cluster)
    try:
        yield client, ClusterInfo("local", cluster.scheduler_address, n)
    finally:
        client.close()
        cluster.close()
