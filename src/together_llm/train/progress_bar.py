"""The progress bar of a training run: a rich bar on stderr with the step, the loss and the
tokens per second, or nothing when off (a second process, `--quiet`, tests). Whether shown or
not, the run's `progress.json` holds the same numbers for whoever watches from elsewhere
(the web studio's Improve tab)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol


class Progress(Protocol):
    """What the bar shows (loop.Progress; the TRL log builds one from the Trainer's state)."""

    @property
    def step(self) -> int: ...

    @property
    def tokens(self) -> float: ...

    @property
    def seconds(self) -> float: ...

    @property
    def train_loss(self) -> float | None: ...


class ProgressBar:
    """A context manager; `update(progress)` redraws it."""

    def __init__(self, enabled: bool, total: int, name: str, file: Path | None = None) -> None:
        self.enabled, self.total, self.name, self.file = enabled, total, name, file
        self.progress: Any = None  # rich's Progress, once started
        self.task: Any = None

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            # only a run that shows a bar loads rich's widgets
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self.progress = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[speed]} tok/s"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.progress.start()
            self.task = self.progress.add_task(
                f"training {self.name}", total=self.total, loss="-", speed="-"
            )
        return self

    def update(self, p: Progress) -> None:
        if self.file is not None:
            self._write(self.file, p)
        if self.progress is None:
            return
        speed = f"{p.tokens / p.seconds:,.0f}" if p.seconds else "-"
        loss = f"{p.train_loss:.4f}" if p.train_loss is not None else "-"
        self.progress.update(self.task, completed=p.step, loss=loss, speed=speed)

    def _write(self, file: Path, p: Progress) -> None:
        """progress.json, replaced whole: a reader never sees half of it."""
        numbers = {"step": p.step, "steps": self.total, "loss": p.train_loss, "seconds": p.seconds}
        staging = file.with_name(f".progress-{os.getpid()}.json")
        staging.write_text(json.dumps(numbers) + "\n", encoding="utf-8")
        staging.replace(file)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
