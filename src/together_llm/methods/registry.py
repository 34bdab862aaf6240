"""The six training methods, each stated once, and how to look one up.

Which architectures a method cannot train is the family registry's part
(models/families.py): it matches an architecture's limits (no key/value cache, a classifier
that reads input ids) against the facts here (`writes_cache`, `prepends_tokens`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..errors import RefusedError
from . import peft_configs as configs
from .method import Method

FULL = Method(
    "full",
    "every weight",
    peft_type=None,
    options=configs.no_options,
    build=None,
    shardable=True,
    from_scratch=True,
)
LORA = Method(
    "lora",
    "low-rank updates",
    peft_type="LORA",
    options=configs.lora_options,
    build=configs.lora_config,
    shardable=True,
    from_scratch=True,
    merges=True,
    gguf_adapter="lora",
)
# LoRA on a base loaded in 4-bit: it saves an ordinary LoRA adapter. FSDP does not split
# its quantized storage.
QLORA = Method(
    "qlora",
    "LoRA on a 4-bit base",
    peft_type="LORA",
    options=configs.lora_options,
    build=configs.lora_config,
    quantizes=True,
    merges=True,
    gguf_adapter="lora",
)
# The prompt methods save their prompt through PEFT's own accessors, not a state dict that
# FSDP could gather, so none of them shards.
PREFIX = Method(
    "prefix",
    "prefix tuning",
    peft_type="PREFIX_TUNING",
    options=configs.virtual_token_options,
    build=configs.prefix_config,
    prompt_learning=True,
    writes_cache=True,
)
PTUNING = Method(
    "ptuning",
    "P-tuning",
    peft_type="P_TUNING",
    options=configs.virtual_token_options,
    build=configs.ptuning_config,
    prompt_learning=True,
    prepends_tokens=True,
)
PROMPT = Method(
    "prompt",
    "prompt tuning",
    peft_type="PROMPT_TUNING",
    options=configs.virtual_token_options,
    build=configs.prompt_config,
    prompt_learning=True,
    prepends_tokens=True,
)

# name -> method, in the order help texts and "methods that work" lists show them
METHODS: Mapping[str, Method] = MappingProxyType(
    {m.name: m for m in (FULL, LORA, QLORA, PREFIX, PTUNING, PROMPT)}
)
# What llama.cpp accepts as a GGUF adapter's `adapter.type`.
GGUF_ADAPTER_TYPES = frozenset(m.gguf_adapter for m in METHODS.values() if m.gguf_adapter)


def get_method(name: str) -> Method:
    """The method called `name`, refused if unknown."""
    if name not in METHODS:
        raise RefusedError(f"unknown method {name!r}; methods: {', '.join(METHODS)}")
    return METHODS[name]


def by_peft_type(peft_type: object) -> Method | None:
    """The first method whose adapters carry `peft_type` (adapter_config.json's, any case):
    `lora` for a LoRA adapter, whether a lora or a qlora run made it; None if none does."""
    wanted = str(peft_type).upper()
    return next((m for m in METHODS.values() if m.peft_type == wanted), None)
