"""Micro-batches: a deterministic, resumable stream of tensors built from token examples.

A micro-batch holds `batch_size` examples, whatever their lengths. Padding them all to the
longest, as a plain script does, spends most of a batch of mixed-length chats on padding,
which on a CPU costs as much as real tokens. Here (`packing`, the default) the micro-batch's
examples are sorted by length and cut into groups that pad at most an eighth, each group of at
most `row_length` padded tokens and one forward pass; the step's loss is still one mean over
all its learned tokens, so what a step learns does not change, only what it costs.

Why groups and not packed rows (several examples in one row, positions restarting,
inputs/packing.py): measured on this CPU with transformers 5 and SmolLM2, a packed row makes
attention take an explicit block mask, which runs the masked (math) attention kernel, and a
1,200-token packed row trained 5x slower than the same examples apart; short groups padded
by a few tokens keep the fast kernels and work for every architecture and PEFT method.
Without packing the micro-batch is one forward pass padded to its longest (the baseline).

The stream is indexed: micro-batch `m` is batch `m % n` of epoch `m // n`, each epoch in its
own seeded order. A step's micro-batches, and so the data position after a resume, follow
from the step number alone. With several processes (torchrun), each takes every
world-th micro-batch of a step's window, so N processes see what one process with N times
the gradient accumulation sees.
"""

from __future__ import annotations

import math
import random

from .inputs.packing import IGNORE

WASTE = 0.125  # the most padding a group may add, as a fraction of its real tokens


class MicroBatches:
    def __init__(
        self,
        examples: list[dict],
        batch_size: int,
        seed: int,
        packing: bool,
        pad_token_id: int,
        row_length: int,
        shuffle: bool = True,
    ):
        self.examples = examples
        self.row_length = row_length
        self.batch_size = batch_size
        self.seed = seed
        self.packing = packing
        self.pad_token_id = pad_token_id
        self.shuffle = shuffle
        self._order: tuple[int, list[int]] | None = None  # (epoch, order), the last one used

    def __len__(self) -> int:
        """Micro-batches in one epoch."""
        return math.ceil(len(self.examples) / self.batch_size)

    def order(self, epoch: int) -> list[int]:
        if self._order is None or self._order[0] != epoch:
            order = list(range(len(self.examples)))
            if self.shuffle:
                random.Random(self.seed * 100_003 + epoch).shuffle(order)
            self._order = (epoch, order)
        return self._order[1]

    def members(self, m: int) -> list[dict]:
        """The examples of micro-batch `m` of the endless stream."""
        epoch, at = divmod(m, len(self))
        indices = self.order(epoch)[at * self.batch_size : (at + 1) * self.batch_size]
        return [self.examples[i] for i in indices]

    def batch(self, m: int) -> list[dict]:
        """The forward passes of micro-batch `m`: tensors input_ids, labels and
        attention_mask, each [rows, length]."""
        examples = self.members(m)
        if not self.packing:
            return [pad(examples, self.pad_token_id)]
        return [pad(group, self.pad_token_id) for group in groups(examples, self.row_length)]


def groups(examples: list[dict], row_length: int) -> list[list[dict]]:
    """`examples` sorted by length and cut into groups that pad at most WASTE of their real
    tokens and hold at most `row_length` tokens padded (a longer example is alone)."""
    ordered = sorted(examples, key=lambda e: len(e["input_ids"]))
    found: list[list[dict]] = []
    current: list[dict] = []
    real = 0
    for example in ordered:
        length = len(example["input_ids"])  # the longest so far: sorted ascending
        padded = (len(current) + 1) * length
        if current and (padded > (real + length) * (1 + WASTE) or padded > row_length):
            found.append(current)
            current, real = [], 0
        current.append(example)
        real += length
    if current:
        found.append(current)
    return found


def pad(examples: list[dict], pad_token_id: int) -> dict:
    """Right-padded tensors input_ids and attention_mask [rows, length], and labels: padded
    with IGNORE to their own longest ([rows, length] for a causal LM, [rows, target length]
    for an encoder-decoder) or one class id a row ([rows], a classifier). Padding is never
    learned."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids, mask = [], []
    for e in examples:
        n = len(e["input_ids"])
        ids.append(list(e["input_ids"]) + [pad_token_id] * (width - n))
        mask.append([1] * n + [0] * (width - n))
    if isinstance(examples[0]["labels"], int):
        labels = [e["labels"] for e in examples]
    else:
        longest = max(len(e["labels"]) for e in examples)
        labels = [list(e["labels"]) + [IGNORE] * (longest - len(e["labels"])) for e in examples]
    return {
        "input_ids": torch.tensor(ids),
        "labels": torch.tensor(labels),
        "attention_mask": torch.tensor(mask),
    }
