"""sft: supervised fine-tuning on `chat` datasets, multi-turn.

Each conversation is rendered with the model's own chat template, as at inference, and only
the assistant's turns (with the end-of-turn token that closes each) are learned
(inputs/encode.encode_chat). A conversation whose assistant tokens are all cut away by
`max_length` is dropped and counted, never trained on with no labels."""

from __future__ import annotations

from ..inputs.encode import encode_rows
from .base import Stage


def encode(rows, tokenizer, max_length: int, stats, labels=None) -> list[dict]:
    return encode_rows("chat", rows, tokenizer, max_length, stats)


STAGE = Stage(
    "sft", ("chat",), "causal-lm", "chat fine-tuning on the assistant's turns", encode=encode
)
