"""The progress bar every `tllm data` command shows for long work.

One protocol for all of them: the work gets a callback `update(done, note=None)` where
`done` is the absolute amount finished so far (rows, bytes or tasks, never an increment) and
`note` an optional short text shown after the bar. The bar goes to stderr, only when
stderr is a terminal and the work is big enough to wait for, so piped output and --json
stay clean and small runs stay quiet; otherwise the callback does nothing. It appears at
the first update, so an error found before any work is not drawn under an empty bar.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import Progress


class Update(Protocol):
    def __call__(self, done: int, note: str | None = None) -> None: ...


def _nothing(done: int, note: str | None = None) -> None:
    pass


class progress:
    """`with progress("cleaning mine", total) as update: work(progress=update)`.

    unit: "rows" (shows done/total), "bytes" (shows sizes) or "tasks" (shows done/total and
    the elapsed time; for slow work whose total is small). at_least: the smallest total that
    gets a bar. transient: remove the bar when done (keep it for slow work the user watched).
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        unit: str = "rows",
        at_least: int = 5000,
        transient: bool = True,
    ):
        if unit not in ("rows", "bytes", "tasks"):
            raise ValueError(f"unknown progress unit {unit!r}")
        self.label, self.total, self.unit = label, total, unit
        self.at_least, self.transient = at_least, transient
        self.bar: Progress | None = None

    def __enter__(self) -> Update | Callable[..., None]:
        total = self.total
        if not total or total < self.at_least or not sys.stderr.isatty():
            return _nothing
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        count = DownloadColumn() if self.unit == "bytes" else MofNCompleteColumn()
        clock = TimeElapsedColumn() if self.unit == "tasks" else TimeRemainingColumn()
        bar = self.bar = Progress(
            TextColumn(self.label),
            BarColumn(),
            count,
            clock,
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            transient=self.transient,
        )
        task = bar.add_task("", total=total)

        def update(done: int, note: str | None = None) -> None:
            if not bar.live.is_started:  # first report: checks that fail come before any bar
                bar.start()
            if note is None:
                bar.update(task, completed=min(done, total))
            else:
                bar.update(task, completed=min(done, total), description=note)

        return update

    def __exit__(self, *exc) -> None:
        if self.bar is not None and self.bar.live.is_started:
            self.bar.stop()
            self.bar = None


class tasks_progress:
    """`with tasks_progress("evaluating") as bar: work(progress=bar.update)` for work that
    reports `update(done, total)` and knows its total only once it has checked the request:
    the bar (unit "tasks") is drawn at the first report, never under an early refusal."""

    def __init__(self, label: str):
        self.label = label
        self.stack = contextlib.ExitStack()
        self.update_bar: Update | Callable[..., None] | None = None

    def __enter__(self):
        return self

    def update(self, done: int, total: int) -> None:
        if self.update_bar is None:
            self.update_bar = self.stack.enter_context(
                progress(self.label, total, unit="tasks", at_least=1, transient=True)
            )
        self.update_bar(done)

    def __exit__(self, *exc):
        self.stack.close()
