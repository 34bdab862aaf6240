"""Fake models and tokenizers whose probabilities are known, for hand-computed metrics."""

from __future__ import annotations

from types import SimpleNamespace

import torch


class Unigram(torch.nn.Module):
    """Predicts the same next-token distribution `probs` everywhere, whatever the context."""

    def __init__(self, probs):
        super().__init__()
        self.logits = torch.log(torch.tensor(probs, dtype=torch.float))

    def forward(self, input_ids, attention_mask=None):
        batch, length = input_ids.shape
        return SimpleNamespace(logits=self.logits.expand(batch, length, -1))


class CharTokenizer:
    """One token per character of `ALPHABET` (ids 2..), with BOS 1 and EOS 0."""

    ALPHABET = "abcde "

    bos_token_id, eos_token_id = 1, 0

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [2 + self.ALPHABET.index(ch) for ch in text]}
