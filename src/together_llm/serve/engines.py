"""The engines a server answers with, opened on first use.

The `model` field of a request names a model from the registry or an adapter of the home
(applied to the assistant's base model); anything else is a 404 listing what exists.

A GGUF base model is loaded once, as one batching llama.cpp engine, and every LoRA adapter
on it is served from that engine (`AdapterView`): the adapter's GGUF LoRA is loaded beside
the base weights and applied only to the requests that name it. So four adapters cost four
adapters' tensors, not four models, and their requests decode concurrently with the base's.
Adapters llama.cpp cannot apply (prompt methods, DoRA) run on an engine of their own on
transformers, as do all adapters when assistant.yaml says `engine: transformers`.

Adapters come and go while the server runs: one trained, imported or delivered is served on
its first request; one removed answers 404; one retrained (its weights file replaced) is
loaded again on the next request, while requests already decoding on the old weights
finish on them (the scheduler frees the old adapter when none uses it). Loaded adapters
beyond `adapters_mib` are unloaded, least recently used first.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from ..adapters import gguf_form
from ..adapters.store import list_adapters
from ..engine.choice import open_engine, open_gguf
from ..engine.llamacpp.adapter_view import AdapterView, LoadedLora
from ..engine.llamacpp.batch import BatchedLlamaCppEngine
from ..engine.protocol import Engine
from ..errors import TllmError
from ..home import AssistantConfig, Home
from ..models.registry import get_model, list_models
from .errors import APIError

Weights = tuple[int, int, int]  # what identifies an adapter's weights file (see _weights_of)


@dataclass
class _Loaded:
    lora: LoadedLora
    base: BatchedLlamaCppEngine
    weights: Weights
    used: int  # when a request last took it (the least recently used is unloaded first)


class EnginePool:
    def __init__(
        self,
        home: Home,
        config: AssistantConfig,
        slots: int = 8,
        adapters_mib: int = 1024,
        report=lambda message: print(message, file=sys.stderr),
    ):
        self.home, self.config, self.slots = home, config, slots
        self.adapters_mib, self.report = adapters_mib, report
        self._bases: dict[Path, BatchedLlamaCppEngine] = {}  # GGUF models, shared by adapters
        self._loaded: dict[str, _Loaded] = {}  # adapters loaded on a base
        self._engines: dict[str, Engine] = {}  # every other engine: "" is the default
        self._weights: dict[str, Weights] = {}  # transformers adapter engines: what they run
        self._retired: list[Engine] = []  # replaced engines, closed once idle
        self._clock = 0
        self._lock = threading.Lock()  # opening a model takes seconds; open each only once
        self._config_stamp = self._stamp()

    def names(self) -> list[str]:
        """Every name a request may use: the assistant, registered models, then adapters."""
        named = [m.name for m in list_models(self.home)] + list_adapters(self.home)
        return ([self.config.name] if self.config.name not in named else []) + named

    def is_assistant(self, name: str | None) -> bool:
        """Whether `name` stands for the assistant as configured (its model with its active
        adapters, what `tllm ask` answers with): no name, or assistant.yaml's `name` when
        no model or adapter is called so. A client that must name a model names this one
        and talks to the assistant it teaches, whichever version is current."""
        if name is None:
            return True
        named = {m.name for m in list_models(self.home)} | set(list_adapters(self.home))
        return name == self.config.name and name not in named

    def get(
        self, name: str | None, scale: float | None = None, lora: dict[str, float] | None = None
    ) -> Engine:
        """The engine for `name` (default: the assistant's model and active adapters).
        `scale` sets the strength of the adapters `name` brings; `lora` ({adapter: scale})
        adds adapters or sets theirs, for this request only (0 leaves one out)."""
        with self._lock:
            self._follow_active()
        model, adapters = self._resolve(name)
        strengths = {adapter: 1.0 if scale is None else scale for adapter in adapters}
        if scale is not None and not adapters:
            raise APIError(
                400,
                f"adapter_scale scales an adapter, and {name or model!r} brings none; name an "
                "adapter in `model`, or use `lora`",
                param="adapter_scale",
            )
        for adapter, strength in (lora or {}).items():
            if adapter not in list_adapters(self.home):
                raise APIError(
                    400,
                    f"lora names {adapter!r}, which is no adapter of this home; adapters: "
                    f"{', '.join(list_adapters(self.home)) or 'none yet'}",
                    param="lora",
                )
            strengths[adapter] = strength
        per_request = scale is not None or bool(lora)
        with self._lock:
            self._close_idle()
            if not strengths:
                return self._model_engine(model)
            view = self._view(model, strengths)
            if view is not None:
                return view
            if per_request:
                raise APIError(
                    400,
                    "adapter strength is set on the llama.cpp engine, and these adapters run on "
                    f"transformers: {'; '.join(self._why_not(model, list(strengths)))}",
                    param="lora" if lora else "adapter_scale",
                )
            return self._transformers(name, adapters)

    def _stamp(self) -> int | None:
        try:
            return self.home.config_path.stat().st_mtime_ns
        except OSError:
            return None

    def _follow_active(self) -> None:
        """Take the active adapters from assistant.yaml again when it changed: `tllm improve`
        adopting the first version, `tllm adapters use`. The assistant a person teaches is
        the one they talk to, without a restart (a new version of an active adapter is
        seen by its changed weights)."""
        stamp = self._stamp()
        if stamp == self._config_stamp:
            return
        self._config_stamp = stamp
        try:
            adapters = self.home.load_config().adapters
        except TllmError as error:
            self.report(f"assistant.yaml changed and cannot be read, keeping the adapters: {error}")
            return
        if adapters != self.config.adapters:
            self.report(f"active adapters now: {', '.join(adapters) or 'none'}")
            self.config.adapters = list(adapters)

    def _resolve(self, name: str | None) -> tuple[str, list[str]]:
        """(base model, adapters) a `model` field stands for."""
        if name is None or self.is_assistant(name):
            return self.config.model, list(self.config.adapters)
        if name in (m.name for m in list_models(self.home)):
            return name, []  # a base model named explicitly is served bare
        if name in list_adapters(self.home):
            return self.config.model, [name]
        raise APIError(
            404,
            f"model {name!r} does not exist; models: {', '.join(self.names())}",
            param="model",
            code="model_not_found",
        )

    def _model_engine(self, model: str) -> Engine:
        """A base model without adapters: its shared llama.cpp engine when it is a GGUF."""
        entry = get_model(self.home, model)
        if entry.gguf_path is not None and self.config.engine != "transformers":
            return self._base(entry.gguf_path, entry.name)
        if model not in self._engines:
            bare = dataclasses.replace(self.config, adapters=[])
            self._engines[model] = open_engine(
                self.home, bare, model=model, slots=self.slots, report=self.report
            )
        return self._engines[model]

    def _base(self, path: Path, model_name: str) -> BatchedLlamaCppEngine:
        if path not in self._bases:
            engine = open_gguf(path, self.config, model_name, self.slots)
            assert isinstance(engine, BatchedLlamaCppEngine)  # slots > 0
            self._bases[path] = engine
        return self._bases[path]

    def _view(self, model: str, strengths: dict[str, float]) -> AdapterView | None:
        """The adapters on their base's shared llama.cpp engine, or None when llama.cpp
        cannot apply one of them (or the base is no GGUF, or the config says transformers)."""
        if self.config.engine == "transformers":
            return None
        entry = get_model(self.home, model)
        if entry.kind == "remote":
            raise APIError(400, f"model {model!r} is remote; adapters apply to local models")
        loaded = []
        for adapter in strengths:
            found = self._load(adapter, entry)
            if found is None:
                return None
            loaded.append(found)
        if len({id(item.base) for item in loaded}) > 1:
            return None  # made for different GGUF files of the base: cannot be combined
        self._clock += 1
        for item in loaded:
            item.used = self._clock
        self._unload_beyond_bound(keep=set(strengths))
        pairs = tuple((item.lora, strengths[item.lora.name]) for item in loaded)
        return AdapterView(loaded[0].base, pairs, entry.name)

    def _load(self, adapter: str, entry) -> _Loaded | None:
        """The adapter loaded on its base (again, when its weights changed)."""
        weights = _weights_of(self.home, adapter)
        known = self._loaded.get(adapter)
        if known is not None and known.weights == weights:
            return known
        if known is not None:  # retrained or replaced: requests on it finish, then it goes
            known.base.forget_lora(known.lora.pointer)
            del self._loaded[adapter]
        try:
            form = gguf_form.ensure(self.home, adapter, entry, self.report)
        except TllmError as error:
            if self.config.engine == "llama.cpp":
                raise
            self.report(f"adapter {adapter!r} runs on the transformers engine: {error}")
            return None
        if form is None:
            return None
        model_path, lora_path = form
        base = self._base(model_path, entry.name)
        pointer = base.load_lora(lora_path)
        lora = LoadedLora(adapter, pointer, lora_path, lora_path.stat().st_size)
        self._loaded[adapter] = _Loaded(lora, base, weights, self._clock)
        return self._loaded[adapter]

    def _unload_beyond_bound(self, keep: set[str]) -> None:
        """Unload the least recently used adapters (but those of this request) while the
        loaded ones take more than `adapters_mib`."""
        by_age = sorted(self._loaded.items(), key=lambda item: item[1].used)
        total = sum(item.lora.size for _, item in by_age)
        for adapter, item in by_age:
            if total <= self.adapters_mib * 2**20:
                return
            if adapter not in keep:
                item.base.forget_lora(item.lora.pointer)  # freed once no request uses it
                del self._loaded[adapter]
                total -= item.lora.size

    def _why_not(self, model: str, adapters: list[str]) -> list[str]:
        entry = get_model(self.home, model)
        return [
            f"{adapter}: {gguf_form.serving_engine(self.home, adapter, entry.name)}"
            for adapter in adapters
        ]

    def _transformers(self, name: str | None, adapters: list[str]) -> Engine:
        """An engine of its own for adapters llama.cpp cannot apply (one per name)."""
        key = name or ""
        if key in self._weights and self._weights[key] != _weights_of(self.home, key):
            self._retired.append(self._engines.pop(key))  # retrained, or removed
            del self._weights[key]
        if key not in self._engines:
            self._engines[key] = open_engine(
                self.home,
                self.config,
                adapter=name,
                engine="transformers" if self.config.engine == "auto" else None,
                slots=self.slots,
                report=self.report,
            )
            if name is not None:
                self._weights[key] = _weights_of(self.home, name)
        return self._engines[key]

    def _close_idle(self) -> None:
        """Close the replaced engines that no request decodes on any more, and unload the
        adapters removed from the home."""
        for adapter in [a for a in self._loaded if _weights_of(self.home, a) == (0, 0, 0)]:
            gone = self._loaded.pop(adapter)
            gone.base.forget_lora(gone.lora.pointer)
        busy = [e for e in self._retired if not _idle(e)]
        for engine in self._retired:
            if engine not in busy:
                engine.close()
        self._retired = busy

    def engine_of(self, name: str) -> str:
        """Which engine answers `name` (a model or adapter), and why: what /v1/models says."""
        if self.is_assistant(name):
            adapters = list(self.config.adapters)
            if len(adapters) > 1:
                return "; ".join(f"{a}: {self.engine_of(a)}" for a in adapters)
            return self.engine_of(adapters[0] if adapters else self.config.model)
        if name in list_adapters(self.home):
            loaded = self._loaded.get(name)
            if loaded is not None and loaded.weights == _weights_of(self.home, name):
                return "llama.cpp (GGUF LoRA loaded on the shared base)"
            if self.config.engine == "transformers":
                return "transformers (assistant.yaml's engine)"
            return gguf_form.serving_engine(self.home, name, self.config.model)
        entry = get_model(self.home, name)
        if entry.kind == "remote":
            return "remote"
        if entry.gguf_path is not None and self.config.engine != "transformers":
            return "llama.cpp"
        if entry.gguf_path is not None:
            return "transformers (assistant.yaml's engine)"
        return (
            f"transformers (no GGUF file; `tllm export --model {name} --gguf q8_0` and "
            "`tllm models add` serve it on llama.cpp)"
        )

    def opened(self) -> list[Engine]:
        """The engines open now (loaded models; adapters on a shared base are no engine)."""
        return [*self._bases.values(), *self._engines.values()]

    def _batching(self) -> list:
        return [e.scheduler for e in self.opened() if hasattr(e, "scheduler")]

    def busy_slots(self) -> int:
        """Sequences decoding now, over every batching engine (the batch size)."""
        return sum(scheduler.busy_slots for scheduler in self._batching())

    def queue_depth(self) -> int:
        """Requests waiting for a free slot."""
        return sum(scheduler.queue_depth for scheduler in self._batching())

    def close(self) -> None:
        with self._lock:
            for engine in [*self._bases.values(), *self._engines.values(), *self._retired]:
                engine.close()
            self._bases.clear()
            self._loaded.clear()
            self._engines.clear()
            self._retired.clear()


def _weights_of(home: Home, adapter: str) -> Weights:
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
