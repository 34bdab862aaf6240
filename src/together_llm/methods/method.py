"""What a training method is: one frozen record of facts that the rest of the code reads
instead of testing the method's name.

A method either trains every weight of the base (`full`: no PEFT config, the result is a
whole model) or trains a PEFT adapter beside the frozen base (the result is an adapter
folder). The facts below are the questions the code used to answer with
`method == "full"` or `method in ("prefix", "ptuning", "prompt")`, asked once here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class PeftSettings(Protocol):
    """The recipe fields a method reads its PEFT options from (train.recipe.Recipe has
    them all; read-only here, so any object with these attributes fits)."""

    @property
    def rank(self) -> int: ...

    @property
    def alpha(self) -> float: ...

    @property
    def dropout(self) -> float: ...

    @property
    def target_modules(self) -> Sequence[str]: ...

    @property
    def dora(self) -> bool: ...

    @property
    def num_virtual_tokens(self) -> int: ...


# options(settings) -> the recipe's options in PEFT's own names (r, lora_alpha, ...)
OptionsFromRecipe = Callable[[PeftSettings], dict[str, Any]]
# build(task_type, sizes, options) -> a PEFT config; `sizes` are what the architecture fills
# in (LoRA's target modules, a prompt method's widths), `options` override every default.
BuildConfig = Callable[[str, dict[str, Any], dict[str, Any]], Any]


@dataclass(frozen=True)
class Method:
    """One training method and everything the code needs to know about it."""

    name: str
    summary: str  # a few words for help texts
    # adapter_config.json's peft_type for what it saves; None: no adapter, the whole model
    peft_type: str | None
    options: OptionsFromRecipe
    build: BuildConfig | None  # None: no PEFT config (every weight trains)
    # PEFT's prompt learning: it trains `num_virtual_tokens` virtual tokens, sized from the
    # base's config.json, instead of weights of the base
    prompt_learning: bool = False
    # its virtual tokens go into every layer's past key/value cache (prefix tuning), so the
    # base's attention must take a cache
    writes_cache: bool = False
    # its virtual tokens are prepended to the input embeddings (P-tuning, prompt tuning):
    # the model sees embeddings, not input ids, and its logits no longer line up with them
    prepends_tokens: bool = False
    quantizes: bool = False  # loads the base quantized to 4-bit NF4 (bitsandbytes)
    # FSDP shards it (train/sharding.py): its trainable state is ordinary parameters
    shardable: bool = False
    from_scratch: bool = False  # --init random can train it (a fresh model of the base's config)
    # adapters of it combine by weight (PEFT's add_weighted_adapter: merge, evolve)
    merges: bool = False
    # the GGUF adapter type llama.cpp applies it as (tllm export --gguf-adapter); None: it
    # cannot be applied on top of a GGUF base, only merged into it
    gguf_adapter: str | None = None

    @property
    def saves_full_model(self) -> bool:
        """Whether the result is a whole model (models/<name>/) rather than an adapter."""
        return self.peft_type is None

    @property
    def packs(self) -> bool:
        """Whether examples may be packed into one row: prefix tuning hands the model a
        cache (which turns the packed-position detection off) and prepended virtual tokens
        are not counted in the packed positions."""
        return not self.prompt_learning
