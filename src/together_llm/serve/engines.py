"""The engines a server answers with: one per base model or adapter, opened on first use.

The `model` field of a request names a model from the registry or an adapter of the home
(applied to the assistant's base model); anything else is a 404 listing what exists.

Adapters come and go while the server runs: one trained, imported or delivered is served on
its first request; one removed answers 404; one retrained (its weights file replaced) gets a
new engine on the next request, while requests already decoding on the old one finish on
the old weights (the old engine is closed once it is idle).
"""

from __future__ import annotations

import dataclasses
import threading

from ..adapters.store import list_adapters
from ..engine.choice import open_engine
from ..engine.protocol import Engine
from ..home import AssistantConfig, Home
from ..models.registry import list_models
from .errors import APIError


class EnginePool:
    def __init__(self, home: Home, config: AssistantConfig, slots: int = 8):
        self.home, self.config, self.slots = home, config, slots
        self._engines: dict[str, Engine] = {}
        self._weights: dict[str, tuple[int, int, int]] = {}  # adapter engines: what they run
        self._retired: list[Engine] = []  # replaced engines, closed once idle
        self._lock = threading.Lock()  # opening a model takes seconds; open each only once

    def names(self) -> list[str]:
        """Every name a request may use: registered models, then adapters."""
        return [m.name for m in list_models(self.home)] + list_adapters(self.home)

    def get(self, name: str | None) -> Engine:
        """The engine for `name` (default: the assistant's model and active adapters)."""
        key = name or ""
        with self._lock:
            self._close_idle()
            if key in self._weights and self._weights[key] != _weights_of(self.home, key):
                self._retired.append(self._engines.pop(key))  # retrained, or removed
                del self._weights[key]
            if key not in self._engines:
                self._engines[key] = self._open(name)
                if name is not None and name in list_adapters(self.home):
                    self._weights[key] = _weights_of(self.home, name)
            return self._engines[key]

    def _close_idle(self) -> None:
        """Close the replaced engines that no request decodes on any more."""
        busy = [e for e in self._retired if not _idle(e)]
        for engine in self._retired:
            if engine not in busy:
                engine.close()
        self._retired = busy

    def _open(self, name: str | None) -> Engine:
        if name is None:
            return open_engine(self.home, self.config, slots=self.slots)
        if name in (m.name for m in list_models(self.home)):
            # a base model named explicitly is served bare, without the active adapters
            return open_engine(
                self.home,
                dataclasses.replace(self.config, adapters=[]),
                model=name,
                slots=self.slots,
            )
        if name in list_adapters(self.home):
            return open_engine(self.home, self.config, adapter=name, slots=self.slots)
        raise APIError(
            404,
            f"model {name!r} does not exist; models: {', '.join(self.names())}",
            param="model",
            code="model_not_found",
        )

    def busy_slots(self) -> int:
        """Sequences decoding now, over every batching engine (the batch size)."""
        return sum(
            e.scheduler.busy_slots for e in list(self._engines.values()) if hasattr(e, "scheduler")
        )

    def queue_depth(self) -> int:
        """Requests waiting for a free slot."""
        return sum(
            e.scheduler.queue_depth for e in list(self._engines.values()) if hasattr(e, "scheduler")
        )

    def close(self) -> None:
        with self._lock:
            for engine in [*self._engines.values(), *self._retired]:
                engine.close()
            self._engines.clear()
            self._retired.clear()


def _weights_of(home: Home, adapter: str) -> tuple[int, int, int]:
    """What identifies an adapter's weights file now: retraining or importing replaces the
    adapter's folder, so the file's inode changes even when its size does not. (0, 0, 0)
    when the adapter is gone."""
    try:
        found = (home.adapters_dir / adapter / "adapter_model.safetensors").stat()
    except (OSError, ValueError):
        return (0, 0, 0)
    return (found.st_ino, found.st_size, found.st_mtime_ns)


def _idle(engine: Engine) -> bool:
    """Whether nothing decodes on `engine`: a batching engine knows; one that decodes a
    request at a time is closed only with the server (a request may still be running)."""
    scheduler = getattr(engine, "scheduler", None)
    return scheduler is not None and scheduler.busy_slots == 0 and scheduler.queue_depth == 0
