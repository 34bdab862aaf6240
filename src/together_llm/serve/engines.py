"""The engines a server answers with: one per base model or adapter, opened on first use.

The `model` field of a request names a model from the registry or an adapter of the home
(applied to the assistant's base model); anything else is a 404 listing what exists.
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
        self._lock = threading.Lock()  # opening a model takes seconds; open each only once

    def names(self) -> list[str]:
        """Every name a request may use: registered models, then adapters."""
        return [m.name for m in list_models(self.home)] + list_adapters(self.home)

    def get(self, name: str | None) -> Engine:
        """The engine for `name` (default: the assistant's model and active adapters)."""
        key = name or ""
        with self._lock:
            if key not in self._engines:
                self._engines[key] = self._open(name)
            return self._engines[key]

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
            for engine in self._engines.values():
                engine.close()
            self._engines.clear()
