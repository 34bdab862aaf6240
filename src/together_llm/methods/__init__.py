"""The training methods (full, lora, qlora, prefix, ptuning, prompt), in the manner of
PEFT's own registry: each method is one frozen `Method` that states its facts once (what it
saves, whether it quantizes, packs, shards, writes a cache or prepends virtual tokens, how it
builds its PEFT config, what llama.cpp makes of it), and the rest of the code asks those
facts instead of testing names.

It sits below models/ and adapters/ in the layers (pyproject.toml) and imports neither
torch nor peft at import time.
"""

from .method import Method, PeftSettings
from .registry import (
    FULL,
    GGUF_ADAPTER_TYPES,
    LORA,
    METHODS,
    PREFIX,
    PROMPT,
    PTUNING,
    QLORA,
    by_peft_type,
    get_method,
)

__all__ = [
    "FULL",
    "GGUF_ADAPTER_TYPES",
    "LORA",
    "METHODS",
    "PREFIX",
    "PROMPT",
    "PTUNING",
    "QLORA",
    "Method",
    "PeftSettings",
    "by_peft_type",
    "get_method",
]
