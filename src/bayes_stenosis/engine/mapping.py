"""Map seeded trials over a Dask client, saving each finished batch, skipping what an earlier run saved."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from bayes_stenosis.engine.seeds import trial_rng
from bayes_stenosis.engine.store import TRIAL_COLUMN, TrialStore


class TrialTask(Protocol):
    """One simulated trial: ``task(trial, rng) -> rows`` (a non-empty list of dicts without a ``trial`` key).

    A task is picklable (it is sent to every worker once) and deterministic given ``rng``; its
    ``fingerprint`` names everything that changes a result, so a resumed run never mixes other work in.
    A task that needs expensive per-process state (a compiled model) keeps it in a module-level cache
    of its own module, built on a worker's first trial and reused for the rest.
    """

    fingerprint: str

    def __call__(self, trial: int, rng: np.random.Generator) -> list[dict]: ...


class ProgressSink(Protocol):
    def start(self, total: int, done: int) -> None: ...

    def advance(self, k: int) -> None: ...


@dataclass(frozen=True)
class MapReport:
    """What :func:`map_trials` did: the rows of every trial ``0..n_trials-1`` (from disk, sorted), how
    many trials it computed and how many an earlier run had saved, and the wall time of the computing."""

    table: pd.DataFrame
    n_computed: int
    n_resumed: int
    seconds: float

    @property
    def trials_per_second(self) -> float:
        return self.n_computed / self.seconds if self.seconds > 0 else float("nan")


def run_batch(task: TrialTask, trials: list[int], root_seed: int) -> pd.DataFrame:
    """The rows of ``trials``, each trial on its own stream (:func:`~bayes_stenosis.engine.trial_rng`)."""
    rows = []
    for trial in trials:
        out = task(trial, trial_rng(root_seed, trial))
        if not out:  # a trial without rows would look undone to every resumed run
            raise ValueError(f"trial {trial} returned no rows")
        rows.extend({TRIAL_COLUMN: trial, **row} for row in out)
    return pd.DataFrame(rows)


def batches(todo: list[int], batch_size: int) -> list[list[int]]:
    """Consecutive chunks of the sorted trial indices still to do."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (got {batch_size})")
    return [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]


def map_trials(
    task: TrialTask,
    n_trials: int | range,
    *,
    root_seed: int,
    store_path: str | Path,
    client,
    batch_size: int = 50,
    progress: ProgressSink | None = None,
) -> MapReport:
    """Run trials ``0..n_trials-1`` of ``task`` (or the trials of a ``range``) on ``client``'s workers; the
    rows of every one of them.

    Trials already saved in the store at ``store_path`` (same ``task.fingerprint`` and ``root_seed``)
    are skipped; the rest go to the workers in batches of ``batch_size``, and each batch is saved as
    it arrives. A run killed at any point resumes from its saved batches; since trial ``i`` always
    draws from :func:`~bayes_stenosis.engine.trial_rng` ``(root_seed, i)``, the table is the same
    whatever the number of workers, the batch size, or how often the run was interrupted.

    Raises
    ------
    InputError
        The store holds other work (see :meth:`TrialStore.open`).
    Exception
        The first error of a trial, after the batches finished before it are saved and the rest cancelled.
    """
    from distributed import as_completed

    wanted = n_trials if isinstance(n_trials, range) else range(n_trials)
    if len(wanted) < 1 or wanted.start < 0 or wanted.step != 1:
        raise ValueError(f"need at least one trial, indices from 0 up in steps of 1 (got {n_trials})")
    store = TrialStore(Path(store_path), task.fingerprint, int(root_seed)).open()
    done = store.done_trials()
    todo = [i for i in wanted if i not in done]
    if progress is not None:
        progress.start(len(wanted), len(wanted) - len(todo))
    start = time.perf_counter()
    if todo:
        shared = client.scatter(task, broadcast=True, hash=False)
        futures = [
            client.submit(run_batch, shared, chunk, int(root_seed), pure=False) for chunk in batches(todo, batch_size)
        ]
        try:
            for future in as_completed(futures):
                rows = future.result()  # raises the trial's error here
                store.write_part(rows)
                if progress is not None:
                    progress.advance(int(rows[TRIAL_COLUMN].nunique()))
        except BaseException:
            client.cancel(futures)
            raise
    seconds = time.perf_counter() - start
    return MapReport(store.read(wanted), len(todo), len(wanted) - len(todo), seconds)
