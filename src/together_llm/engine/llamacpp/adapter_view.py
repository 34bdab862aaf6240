"""Adapters served from one loaded base model: an `AdapterView` is the engine a request
gets for an adapter set on a `BatchedLlamaCppEngine`.

The view holds no weights and no context of its own. Its requests go to the base engine's
scheduler tagged with the view's (adapter, scale) pairs, and the scheduler applies that set
while it decodes them (scheduler.py); so any number of adapters answer concurrently from
one copy of the base weights and one KV cache, each costing only its own tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...sampling import SamplingParams
from ..protocol import Engine, TokenIds
from .batch import BatchedLlamaCppEngine


@dataclass(frozen=True)
class LoadedLora:
    """A GGUF LoRA loaded on a base engine's model."""

    name: str  # the adapter's name in the home
    pointer: int  # llama_adapter_lora*, valid until the base engine forgets it
    path: Path
    size: int  # bytes of the GGUF file: about what it takes in memory


class AdapterView(Engine):
    """The base engine answering with `loras` applied at their scales."""

    name = "llama.cpp"
    concurrent = True
    supports_grammar = True
    supports_logprobs = True

    def __init__(
        self,
        base: BatchedLlamaCppEngine,
        loras: tuple[tuple[LoadedLora, float], ...],
        model_name: str,
    ):
        self.base, self.loras, self.model_name = base, loras, model_name
        self._pointers = tuple((lora.pointer, scale) for lora, scale in loras if scale)
        self.context_length = base.context_length
        self.chat_template = base.chat_template
        self.bos_token, self.eos_token = base.bos_token, base.eos_token
        self.special_texts = base.special_texts

    def tokenize(self, text: str) -> list[int]:
        return self.base.tokenize(text)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.base.detokenize(ids)

    def is_end(self, token_id: int) -> bool:
        return self.base.is_end(token_id)

    @property
    def vocab_size(self) -> int:
        return self.base.vocab_size

    def token_bytes(self, token_id: int) -> bytes:
        return self.base.token_bytes(token_id)

    def _token_ids(
        self, prompt_ids: list[int], params: SamplingParams, max_tokens: int
    ) -> TokenIds:
        return self.base._token_ids(prompt_ids, params, max_tokens, self._pointers)

    def prompt_logprobs(self, prompt_ids: list[int], k: int = 0) -> list:
        return self.base.prompt_logprobs(prompt_ids, k, self._pointers)

    def embed(self, texts: list[str]) -> list[list[float]]:
        """The base model's embeddings (an adapter trained for answers does not change what
        retrieval compares)."""
        return self.base.embed(texts)

    def close(self) -> None:
        """Nothing to free: the base engine and the server's pool own the adapters."""
