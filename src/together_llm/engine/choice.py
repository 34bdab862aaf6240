"""Choosing and opening the engine for a model, an adapter and assistant.yaml's settings."""

from __future__ import annotations

import sys
from pathlib import Path

from ..adapters import gguf_form
from ..adapters.store import adapter_dir
from ..errors import TllmError
from ..home import AssistantConfig, Home
from ..models.fingerprint import fingerprint
from ..models.registry import get_model, remote_key
from .hf_engine import HFEngine
from .llamacpp.batch import BatchedLlamaCppEngine
from .llamacpp.engine import LlamaCppEngine
from .protocol import Engine
from .remote_engine import RemoteEngine


def open_engine(
    home: Home,
    config: AssistantConfig,
    model: str | None = None,
    adapter: str | None = None,
    engine: str | None = None,
    slots: int = 0,
    report=lambda message: print(message, file=sys.stderr),
) -> Engine:
    """The engine that will answer: llama.cpp for a GGUF model without adapters, or with one
    LoRA adapter (its GGUF form written on first use when training did not; fast, no torch);
    transformers otherwise (converting a GGUF model once if needed), in assistant.yaml's
    `precision`.

    `slots` > 0 asks for continuous batching on llama.cpp (a server's many clients decode
    together); 0 is one request at a time, which starts faster (ask, chat)."""
    entry = get_model(home, model or config.model)
    if entry.kind == "remote":
        if adapter:
            raise TllmError(f"model {entry.name!r} is remote; adapters apply to local models")

        return RemoteEngine(
            entry.source,
            entry.options["model"],
            remote_key(entry.name, entry.options.get("api_key_env")),
            context_length=config.context_length,
        )
    adapters = [adapter] if adapter else list(config.adapters)
    choice = engine or config.engine
    lora = None  # (GGUF model, GGUF LoRA) that run the one adapter on llama.cpp
    if choice in ("auto", "llama.cpp") and len(adapters) == 1:
        try:
            lora = gguf_form.ensure(home, adapters[0], entry, report)
        except TllmError as error:
            if choice == "llama.cpp":
                raise
            report(f"adapter {adapters[0]!r} runs on the transformers engine: {error}")
    if choice == "auto":
        runs_gguf = entry.gguf_path is not None and (not adapters or lora is not None)
        choice = "llama.cpp" if runs_gguf else "transformers"

    if choice == "llama.cpp":
        if adapters and lora is None:
            raise TllmError(_no_gguf_form(home, adapters, entry.name))
        path, lora_path = lora if lora else (entry.gguf_path, None)
        if path is None:
            raise TllmError(
                f"model {entry.name!r} is not a GGUF file; the llama.cpp engine "
                "needs one (use --engine transformers)"
            )
        return open_gguf(path, config, entry.name, slots, lora_path)

    hf_dir = entry.transformers_dir(report)

    base = fingerprint(hf_dir)
    paths = [adapter_dir(home, name, base) for name in adapters]
    return HFEngine(
        hf_dir,
        paths,
        context_length=config.context_length,
        model_name=entry.name,
        precision=config.precision,
    )


def open_gguf(
    path: Path, config: AssistantConfig, model_name: str, slots: int, lora_path: Path | None = None
) -> LlamaCppEngine:
    """The llama.cpp engine on GGUF model `path` (with a GGUF LoRA applied to every request),
    batching `slots` requests (0: one at a time)."""
    if slots:
        return BatchedLlamaCppEngine(
            path,
            context_length=config.context_length,
            model_name=model_name,
            threads=config.threads,
            slots=slots,
            lora_path=lora_path,
            gpu_layers=config.gpu_layers,
        )
    return LlamaCppEngine(
        path,
        context_length=config.context_length,
        model_name=model_name,
        threads=config.threads,
        lora_path=lora_path,
        gpu_layers=config.gpu_layers,
    )


def _no_gguf_form(home: Home, adapters: list[str], model: str) -> str:
    if len(adapters) > 1:
        return (
            f"llama.cpp applies one adapter at a time, and {', '.join(adapters)} are "
            "active; adapters run together on the transformers engine (use --engine "
            "transformers, or auto)"
        )
    name = adapters[0]
    why = gguf_form.why_not_llama_cpp(adapter_dir(home, name))
    return why or (
        f"adapter {name!r} has no GGUF LoRA for model {model!r}, and none can be written "
        "for it (a base that is no GGUF file); use --engine transformers (or auto)"
    )
