"""What a TRL run hears from its Trainer: a `TrainerCallback` that writes the Trainer's logs
into the run's log.jsonl (step first, TRL's own names) and keeps them for the plot and the
metrics, draws the progress bar, and asks the Trainer to save a checkpoint and stop on
Ctrl-C, SIGTERM (stopping.StopSignals) or `stop_after`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .progress_bar import ProgressBar
from .run_folder import RunLog


@dataclass
class BarState:
    """The Trainer's progress as the bar shows it (progress_bar.Progress)."""

    step: int
    tokens: float
    seconds: float
    train_loss: float | None


class TrainerLog:
    def __init__(
        self,
        log: RunLog,
        stop_after: int | None,
        bar: bool,
        name: str,
        progress_file: Path | None = None,
    ) -> None:
        self.log, self.stop_after = log, stop_after
        self.history: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}  # the Trainer's closing log (runtime, mean loss...)
        self.tokens = 0.0
        self.stop_reason: str | None = None  # set by a signal or stop_after: save, then stop
        self._bar_wanted, self._name, self._file = bar, name, progress_file
        self._bar: ProgressBar | None = None
        self._started = time.monotonic()

    def add(self, step: int, logs: dict[str, Any]) -> None:
        numbers = {k: v for k, v in logs.items() if isinstance(v, (int, float))}
        self.tokens = numbers.get("num_tokens", self.tokens)
        if "train_runtime" in numbers:
            self.summary = numbers
            return
        if not ("loss" in numbers or "eval_loss" in numbers):
            return
        record = {"step": step, **numbers}
        self.history.append(record)
        self.log.append(record)

    def last_train(self) -> dict[str, Any]:
        """The last record with a training loss ({} before the first)."""
        return next((r for r in reversed(self.history) if "loss" in r), {})

    def open_bar(self, total: int, step: int) -> None:
        if (self._bar_wanted or self._file is not None) and self._bar is None:
            bar = ProgressBar(self._bar_wanted, total, self._name, self._file)
            self._bar = bar.__enter__()
            self.update_bar(step)

    def update_bar(self, step: int) -> None:
        if self._bar is not None:
            seconds = time.monotonic() - self._started
            loss = self.last_train().get("loss")
            self._bar.update(BarState(step, self.tokens, seconds, loss))

    def close_bar(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def callback(self) -> Any:
        """A transformers TrainerCallback feeding this log (transformers loads only here)."""
        from transformers import TrainerCallback

        log = self

        class Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                log.open_bar(state.max_steps, state.global_step)

            def on_log(self, args, state, control, logs=None, **kwargs):
                log.add(state.global_step, logs or {})

            def on_step_end(self, args, state, control, **kwargs):
                log.update_bar(state.global_step)
                if log.stop_after is not None and state.global_step >= log.stop_after:
                    log.stop_reason = log.stop_reason or "stopped"
                if log.stop_reason:  # save where we are, then stop
                    control.should_save = True
                    control.should_training_stop = True
                elif state.global_step >= state.max_steps:
                    # The Trainer saves a last checkpoint; the adapter saved next is the result.
                    control.should_save = False
                return control

        return Callback()
