"""Pack tokenized examples into long rows without letting them see each other.

Training on short chats padded to a common length wastes most of each batch on padding.
Packing puts several examples in one row instead, and three things keep the result the
same as training on each example alone:

- `position_ids` restart at 0 for every example. In transformers 5, a decoder that builds its
  mask with `create_causal_mask` (LLaMA, GPT-2, GPT-J, Mistral, Qwen, SmolLM and most recent
  ones) reads a position that does not follow the previous one as the start of a new sequence,
  and makes the attention block-diagonal, for eager, sdpa and flash attention alike. This only
  happens when no `attention_mask` and no cache are passed: the packed rows and `collate`
  deliberately have no mask, and `collate` asks for `use_cache=False` (with the default
  `config.use_cache=True` the model builds an empty cache, even in train mode, and the
  examples silently attend to each other). It is the layout of transformers'
  `DataCollatorWithFlattening`.
- the first label of every example is -100, so no token learns to predict the first token
  of the next, unrelated example across the boundary;
- for models that ignore `position_ids` when masking (OPT, BLOOM), `block_causal_mask` gives
  the explicit 4-D mask instead; `packing_layout` says which of the two a model needs.

Rows are plain dicts of lists of ints, as `encode` produces them, so packing works on a
list, inside `datasets.Dataset.map(batched=True)`, or in a collator.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from ...errors import TllmError
from ...methods import get_method
from ...models.families import architecture
from .encode import IGNORE

STRATEGIES = ("best-fit", "in-order")

# Decoders whose masking ignores position_ids in transformers 5 (checked in
# tests/data/test_packing.py): they need the explicit block mask. BLOOM's ALiBi bias is
# built from the 2-D mask, so it cannot be packed at all.
_NEEDS_MASK = {"opt"}
_CANNOT_PACK = {"bloom"}


def packing_layout(model_type: str, method: str | None = None) -> str | None:
    """How to isolate packed examples for `model_type` trained with `method`: "position_ids"
    (`collate(rows)`), "mask" (`collate(rows, with_mask=True)`) or None: do not pack.

    Only decoders pack, and only with a method that packs (`Method.packs`: prefix tuning
    hands the model a cache, which turns the packed-position detection off, and prompt
    tuning prepends virtual tokens the packed positions do not account for)."""

    if architecture(model_type).family != "decoder" or model_type in _CANNOT_PACK:
        return None
    if method is not None and not get_method(method).packs:
        return None
    return "mask" if model_type in _NEEDS_MASK else "position_ids"


def pack(examples: Iterable[dict], max_length: int, strategy: str = "best-fit") -> dict[str, list]:
    """Pack examples ({"input_ids", "labels"?}) into rows of at most `max_length` tokens.

    Returns columns {"input_ids", "labels", "position_ids", "lengths"}, one entry per packed
    row; "lengths" lists the examples' lengths in that row, in order (for a block mask or a
    flash-attention `cu_seqlens`). An example without labels learns every token but its
    first. "best-fit" (longest first, each into the fullest row it fits) wastes the least
    room; "in-order" keeps the examples' order and starts a new row when one is full.
    """
    if strategy not in STRATEGIES:
        raise TllmError(f"unknown packing strategy {strategy!r}: choose {' or '.join(STRATEGIES)}")
    if max_length < 1:
        raise TllmError(f"max_length must be at least 1, not {max_length}")
    items = [_checked(example, i, max_length) for i, example in enumerate(examples)]
    bins = _best_fit(items, max_length) if strategy == "best-fit" else _in_order(items, max_length)
    rows: dict[str, list] = {"input_ids": [], "labels": [], "position_ids": [], "lengths": []}
    for members in bins:
        input_ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        lengths: list[int] = []
        for ids, labs in (items[i] for i in members):
            input_ids += ids
            labels += [IGNORE] + labs[1:]  # never learn across the boundary
            positions += range(len(ids))
            lengths.append(len(ids))
        rows["input_ids"].append(input_ids)
        rows["labels"].append(labels)
        rows["position_ids"].append(positions)
        rows["lengths"].append(lengths)
    return rows


def _checked(example: dict, index: int, max_length: int) -> tuple[list[int], list[int]]:
    ids = list(example["input_ids"])
    labels = list(example["labels"]) if example.get("labels") is not None else list(ids)
    if not ids:
        raise TllmError(f"example {index} has no tokens")
    if len(labels) != len(ids):
        raise TllmError(f"example {index} has {len(ids)} tokens but {len(labels)} labels")
    if len(ids) > max_length:
        # Cutting here would drop labels behind the caller's back: truncation (which counts
        # what it drops) belongs to encode.py, before packing.
        raise TllmError(
            f"example {index} has {len(ids)} tokens, more than the packed length "
            f"{max_length}; truncate examples to max_length before packing"
        )
    return ids, labels


def _best_fit(items: Sequence[tuple[list, list]], max_length: int) -> list[list[int]]:
    """Best-fit decreasing: longest example first, each into the row with the least room
    that still holds it. Rows are kept sorted by free room, so each placement is a bisect."""
    order = sorted(range(len(items)), key=lambda i: (-len(items[i][0]), i))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, bin index), sorted
    for i in order:
        size = len(items[i][0])
        at = bisect.bisect_left(free, (size, -1))
        if at == len(free):
            bins.append([i])
            room, b = max_length - size, len(bins) - 1
        else:
            room, b = free.pop(at)
            bins[b].append(i)
            room -= size
        if room > 0:
            bisect.insort(free, (room, b))
    return bins


def _in_order(items: Sequence[tuple[list, list]], max_length: int) -> list[list[int]]:
    bins: list[list[int]] = []
    used = max_length  # forces a first row
    for i, (ids, _) in enumerate(items):
        if used + len(ids) > max_length:
            bins.append([])
            used = 0
        bins[-1].append(i)
        used += len(ids)
    return bins


def collate(rows: Sequence[dict], pad_token_id: int = 0, with_mask: bool = False) -> dict:
    """Tensors for a batch of packed rows, padded on the right to the longest.

    Padding gets labels -100 and positions 0, 1, 2...: a fresh "sequence" that no real token
    attends to. No attention_mask is returned, because transformers only honours packed
    position_ids when there is none; `with_mask=True` adds the explicit 4-D block mask
    instead (for models where `packing_layout` says "mask"). `use_cache=False` rides along in
    the batch, so `model(**batch)` (and the Trainer, which does just that) never builds the
    cache that would switch the isolation off."""
    import torch

    width = max(len(row["input_ids"]) for row in rows)
    batch: dict[str, list] = {"input_ids": [], "labels": [], "position_ids": []}
    for row in rows:
        pad = width - len(row["input_ids"])
        batch["input_ids"].append(list(row["input_ids"]) + [pad_token_id] * pad)
        batch["labels"].append(list(row["labels"]) + [IGNORE] * pad)
        batch["position_ids"].append(list(row["position_ids"]) + list(range(pad)))
    tensors = {key: torch.tensor(value, dtype=torch.long) for key, value in batch.items()}
    if with_mask:
        tensors["attention_mask"] = block_causal_mask(tensors["position_ids"])
    return {**tensors, "use_cache": False}


def block_causal_mask(position_ids, dtype=None):
    """The 4-D additive attention mask [batch, 1, length, length] for packed `position_ids`:
    0 where a token may attend (an earlier or the same token of its own example), the
    dtype's minimum elsewhere. Additive float works for both eager (which adds the mask to
    the scores) and sdpa; transformers passes a 4-D mask through unchanged."""
    import torch

    position_ids = torch.as_tensor(position_ids)
    if position_ids.ndim == 1:
        position_ids = position_ids[None]
    dtype = dtype or torch.float32
    # An example starts wherever the position does not follow the previous one.
    step = torch.diff(position_ids, dim=-1, prepend=position_ids[:, :1] - 1)
    example = (step != 1).cumsum(-1)
    length = position_ids.shape[-1]
    index = torch.arange(length)
    causal = index[None, :, None] >= index[None, None, :]
    same = example[:, :, None] == example[:, None, :]
    allowed = (causal & same)[:, None]
    mask = torch.zeros(allowed.shape, dtype=dtype)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)
