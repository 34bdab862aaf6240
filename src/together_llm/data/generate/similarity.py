"""ROUGE-L between instructions: the test Self-Instruct uses to keep only new tasks.

The score is the F-measure of the rouge-score package without stemming: both texts are
lower-cased, every run of characters other than a-z and 0-9 becomes a space, the rest split
on whitespace into tokens, and

    F = 2 * LCS(a, b) / (len(a) + len(b))

(precision LCS/len(a) and recall LCS/len(b) combined with beta = 1); 0 when either text has
no tokens. The longest common subsequence is computed by rapidfuzz in C++.

`InstructionPool` is the pipeline's hot loop: every candidate is compared with every kept
instruction (thousands per step), so tokens are interned as integers once when an
instruction is kept, and one `cdist` call scores a candidate against the whole pool.
"""

from __future__ import annotations

import re

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import LCSseq

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def rouge_tokens(text: str) -> list[str]:
    """The tokens rouge-score's default tokenizer makes (no stemming)."""
    return _NOT_ALNUM.sub(" ", text.lower()).split()


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F-measure of two texts (symmetric, between 0 and 1)."""
    ta, tb = rouge_tokens(a), rouge_tokens(b)
    if not ta or not tb:
        return 0.0
    return 2 * LCSseq.similarity(ta, tb) / (len(ta) + len(tb))


class InstructionPool:
    """Kept instructions, ready to be compared with a new one."""

    def __init__(self, texts=()):
        self.texts: list[str] = []
        self._ids: list[list[int]] = []
        self._lengths: list[int] = []
        self._length_array: np.ndarray | None = None  # rebuilt after each add
        self._vocab: dict[str, int] = {}
        for text in texts:
            self.add(text)

    def __len__(self) -> int:
        return len(self.texts)

    def _encode(self, text: str, grow: bool) -> list[int]:
        vocab = self._vocab
        if grow:
            return [vocab.setdefault(token, len(vocab)) for token in rouge_tokens(text)]
        # A token the pool has never seen cannot be part of any common subsequence.
        return [vocab.get(token, -1) for token in rouge_tokens(text)]

    def add(self, text: str) -> None:
        self.texts.append(text)
        ids = self._encode(text, grow=True)
        self._ids.append(ids)
        self._lengths.append(len(ids))
        self._length_array = None

    def most_similar(self, text: str) -> tuple[float, str | None]:
        """The highest ROUGE-L of `text` against the pool, and the instruction that has it."""
        query = self._encode(text, grow=False)
        if not query or not self._ids:
            return 0.0, None
        lcs = process.cdist([query], self._ids, scorer=LCSseq.similarity, dtype=np.int32)[0]
        if self._length_array is None:
            self._length_array = np.asarray(self._lengths, dtype=np.float64)
        lengths = self._length_array
        scores = np.where(lengths > 0, 2 * lcs / (len(query) + lengths), 0.0)
        best = int(np.argmax(scores))
        return float(scores[best]), self.texts[best]
