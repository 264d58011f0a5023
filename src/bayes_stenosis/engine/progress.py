"""A progress bar over trials (rich), for :func:`bayes_stenosis.engine.map_trials`."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RichTrialProgress:
    """``with RichTrialProgress(console, "trials") as bar: map_trials(..., progress=bar)``.

    :func:`~bayes_stenosis.engine.map_trials` calls ``start(total, done)`` once (``done``: trials
    already saved by an earlier run) and ``advance(k)`` per finished batch.
    """

    def __init__(self, console: Console | None = None, description: str = "trials") -> None:
        self.description = description
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = None

    def __enter__(self) -> RichTrialProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def start(self, total: int, done: int) -> None:
        self.task = self.bar.add_task(self.description, total=total, completed=done)

    def advance(self, k: int) -> None:
        if self.task is not None:
            self.bar.advance(self.task, k)
