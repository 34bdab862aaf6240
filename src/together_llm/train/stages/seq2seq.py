"""seq2seq: encoder-decoder instruction tuning (BART, T5, Pegasus) on `seq2seq` datasets, or
on `chat` datasets as FLAN tunes T5 on instructions.

The encoder reads the source (for extractive QA, the passage then the question); the decoder
learns the target, every token of it (inputs/encode.encode_seq2seq). A chat row becomes a
source and a target: the target is its last assistant turn, the source everything before it,
one line per earlier turn ("User: ...", "Assistant: ...") after any system prompt, so a
single-turn chat is just the question."""

from __future__ import annotations

from ..inputs.encode import encode_rows
from .base import Stage

SPEAKERS = {"user": "User", "assistant": "Assistant"}


def chat_as_seq2seq(row: dict) -> dict:
    """A canonical chat row as a seq2seq row: {"source", "target"}."""
    messages = list(row["messages"])
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    before = messages[:last]
    system = [m["content"] for m in before if m["role"] == "system"]
    turns = [m for m in before if m["role"] != "system"]
    if len(turns) == 1:
        lines = [turns[0]["content"]]
    else:
        lines = [f"{SPEAKERS[m['role']]}: {m['content']}" for m in turns]
    return {"source": "\n\n".join(system + ["\n".join(lines)]), "target": messages[last]["content"]}


def encode(rows, tokenizer, max_length: int, stats, labels=None) -> list[dict]:
    rows = (row if "source" in row else chat_as_seq2seq(row) for row in rows)
    return encode_rows("seq2seq", rows, tokenizer, max_length, stats)


STAGE = Stage(
    "seq2seq", ("seq2seq", "chat"), "seq2seq", "encoder-decoder instruction tuning", encode=encode
)
