"""Perplexity of a causal language model on `text` documents and on the assistant turns of
`chat` rows.

Every scored token is predicted exactly once, from as much left context as the window
allows (the sliding-window method of the Hugging Face perplexity guide): the first window
covers tokens [0, window); each next window starts `stride` tokens later and scores only the
tokens the previous window did not reach, so each of them still sees at least
`window - stride` tokens before it. A smaller stride gives more context per token and costs
more forward passes.

What is scored:
- text: every token of the document. The sequence starts with the tokenizer's BOS (or EOS
  when it has none, as lm-evaluation-harness's rolling log-likelihood does), so even the
  first token has something to be predicted from; the added token itself is not counted.
  A tokenizer with neither leaves the first token unscored.
- chat: the tokens `train.inputs.encode.encode_chat` labels (the assistant's replies and their
  end-of-turn token), predicted from the whole conversation before them; system and user
  turns are context only.

Works with any module called as `model(input_ids=..., attention_mask=...)` that returns
logits (an HF causal LM, a PEFT model wrapping one, or a test's fake).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from ..errors import TllmError
from ..train.inputs.encode import IGNORE, encode_chat


@dataclass
class Perplexity:
    """Mean negative log-likelihood per scored token (nats), its exponential, and how many
    tokens and rows were scored."""

    nll: float
    perplexity: float
    tokens: int
    rows: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Scored:
    """One tokenized row: its ids and, per position, whether that token is scored."""

    ids: list[int]
    scored: list[bool]


def window_spans(length: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """(start, end, first_scored) of each forward pass over a sequence of `length` tokens:
    the pass sees tokens [start, end) and scores positions [first_scored, end), so that the
    scored ranges tile 1..length-1 without overlap (position 0 has no context)."""
    if window < 2:
        raise TllmError(f"the perplexity window must be at least 2 tokens, not {window}")
    if not 1 <= stride < window:
        raise TllmError(
            f"the perplexity stride must be at least 1 and below the window "
            f"({window}), not {stride}: a stride as long as the window would "
            "leave each window's first token without context"
        )
    spans, start, done = [], 0, 1  # `done`: the first position not scored yet
    while done < length:
        end = min(start + window, length)
        spans.append((start, end, done))
        done = end
        start += stride
    return spans


def _device(model):
    import torch

    device = getattr(model, "device", None)
    if device is not None:
        return device
    parameter = next(iter(model.parameters()), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _logits(model, input_ids, attention_mask):
    """The model's logits, in eval mode (dropout off) whatever mode it was left in."""
    training = getattr(model, "training", False)
    if training:
        model.eval()
    try:
        out = model(input_ids=input_ids, attention_mask=attention_mask)
    finally:
        if training:
            model.train()
    return out.logits if hasattr(out, "logits") else out[0]


# Tokens per forward pass when no batch size is given: the logits of a pass hold this many
# times the vocabulary (2048 x 49152 floats, 400 MB, for SmolLM2), on a CPU too.
BATCH_TOKENS = 2048


def sequence_nll(
    model,
    rows: Iterable[Scored],
    window: int,
    stride: int | None = None,
    batch_size: int | None = None,
) -> tuple[float, int]:
    """(summed negative log-likelihood, number of scored tokens) of `rows` under `model`,
    window by window, `batch_size` windows per forward pass (padded on the right, which a
    causal model never looks at; by default as many as fit in BATCH_TOKENS)."""
    import torch

    stride = stride or max(1, window // 2)
    batch_size = batch_size or max(1, BATCH_TOKENS // window)
    pieces = []  # (ids of the window, scored flags for positions 1.. of the window)
    for row in rows:
        if len(row.ids) != len(row.scored):
            raise TllmError("each token needs exactly one scored flag")
        for start, end, first in window_spans(len(row.ids), window, stride):
            flags = [False] * (first - start) + row.scored[first:end]
            if any(flags[1:]):
                pieces.append((row.ids[start:end], flags))
    device = _device(model)
    total, count = 0.0, 0
    with torch.no_grad():
        for at in range(0, len(pieces), batch_size):
            batch = pieces[at : at + batch_size]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            mask = torch.zeros(len(batch), width, dtype=torch.long)
            scored = torch.zeros(len(batch), width, dtype=torch.bool)
            for i, (piece, flags) in enumerate(batch):
                ids[i, : len(piece)] = torch.tensor(piece)
                mask[i, : len(piece)] = 1
                scored[i, : len(piece)] = torch.tensor(flags)
            logits = _logits(model, ids.to(device), mask.to(device))
            # Position t's logits predict token t+1; only scored positions are normalized, so
            # padding and context cost no (vocabulary-wide) softmax.
            keep = scored[:, 1:].to(logits.device)
            logprobs = torch.log_softmax(logits[:, :-1][keep].float(), dim=-1)
            targets = ids[:, 1:].to(logits.device)[keep]
            total -= logprobs.gather(-1, targets.unsqueeze(-1)).sum().item()
            count += len(targets)
    return total, count


def _result(total: float, count: int, rows: int) -> Perplexity:
    if count == 0:
        raise TllmError("nothing to score: the rows hold no token to predict")
    nll = total / count
    return Perplexity(nll=nll, perplexity=math.exp(nll), tokens=count, rows=rows)


def text_rows(texts: Sequence[str], tokenizer) -> list[Scored]:
    """Tokenized documents: a start token (BOS, else EOS) then the text, every text token
    scored."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    rows = []
    for text in texts:
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if start is not None:
            rows.append(Scored([start] + ids, [False] + [True] * len(ids)))
        else:
            rows.append(Scored(ids, [False] + [True] * (len(ids) - 1) if ids else []))
    return rows


def chat_rows(rows: Sequence[dict], tokenizer) -> list[Scored]:
    """Tokenized conversations, only the assistant's tokens scored (the labels training
    learns, from `encode_chat`, so training loss and evaluation count the same tokens)."""

    out = []
    for row in rows:
        example = encode_chat(row, tokenizer)
        if example is None:  # no assistant turn: nothing to score
            continue
        out.append(Scored(example["input_ids"], [label != IGNORE for label in example["labels"]]))
    return out


def perplexity(
    model,
    tokenizer,
    rows: Sequence[dict],
    kind: str = "text",
    window: int | None = None,
    stride: int | None = None,
    batch_size: int | None = None,
) -> Perplexity:
    """Perplexity of `model` on canonical `text` rows ({"text"}) or `chat` rows
    ({"messages"}). `window` defaults to the model's context (`max_position_embeddings`)
    up to 1024 tokens, as the HF guide uses GPT-2's; `stride` to half the window. Compare
    models only at the same window and stride: more context lowers perplexity."""
    if kind == "text":
        scored = text_rows([row["text"] for row in rows], tokenizer)
    elif kind == "chat":
        scored = chat_rows(rows, tokenizer)
    else:
        raise TllmError(f"perplexity is measured on text or chat data, not {kind}")
    window = window or _context(model)
    total, count = sequence_nll(model, scored, window, stride, batch_size)
    return _result(total, count, len(scored))


def _context(model) -> int:
    config = getattr(model, "config", None)
    return min(int(getattr(config, "max_position_embeddings", 0) or 1024), 1024)
