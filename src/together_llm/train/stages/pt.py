"""pt: continued pretraining (or pretraining from a random init) on `text` datasets.

Documents are joined with eos and cut into blocks of `max_length` tokens; every token is
learned (inputs/encode.encode_text)."""

from __future__ import annotations

from ..inputs.encode import encode_rows
from .base import Stage


def encode(rows, tokenizer, max_length: int, stats, labels=None) -> list[dict]:
    return encode_rows("text", rows, tokenizer, max_length, stats)


STAGE = Stage(
    "pt",
    ("text",),
    "causal-lm",
    "causal language modelling on text",
    encode=encode,
    random_init=True,
)
