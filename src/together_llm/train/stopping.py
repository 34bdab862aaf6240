"""Stopping a run cleanly: the first Ctrl-C or SIGTERM asks the trainer to stop after the
current step, which then saves a checkpoint and raises `Interrupted`; a second Ctrl-C
stops at once. Both trainers (loop.py, trl_trainer.py) stop this way."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Protocol

from ..errors import TllmError


class Interrupted(TllmError):
    """Training stopped on Ctrl-C or SIGTERM, after saving a checkpoint."""

    exit_code = 130


class Stoppable(Protocol):
    """What a signal asks to stop: the trainer reads `stop_reason` after every step."""

    stop_reason: str | None


class StopSignals:
    """While training (a context): a signal sets `target.stop_reason`."""

    def __init__(self, target: Stoppable) -> None:
        self.target = target
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        # signal handlers can only be set from the main thread (a test may train in another)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.target.stop_reason = "interrupted" if signum == signal.SIGINT else "terminated"
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C: stop now

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
