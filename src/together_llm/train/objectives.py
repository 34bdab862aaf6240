"""What our loop minimises, per model task: a summed loss over a micro-batch's learned units
and the count of those units, so a step's loss is one mean however its examples are grouped
into forward passes and processes (loop.py).

    causal-lm  learned tokens: label i is predicted at position i - 1 (pt, sft)
    seq2seq    learned target tokens: the decoder's own labels, no shift (the model shifts
               them into decoder inputs itself)
    classify   rows: one label per example, accuracy counted too

Prompt-learning methods prepend virtual tokens: logits of the input are always the last
positions, and classifier logits are one row per example whatever the method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .inputs.packing import IGNORE


def causal_lm_loss(model, batch: dict, learned_only: bool = False):
    """Summed cross-entropy of every learned token of `batch` (a 0-d tensor).

    `learned_only` computes logits only at the positions whose next token is learned (the
    model's `logits_to_keep` with a boolean mask): in sft most positions are the prompt's,
    and the vocabulary projection with its softmax is a fifth of a small model's work."""
    import torch.nn.functional as F

    labels = batch["labels"]  # [rows, length]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if learned_only:
        keep = labels.new_zeros(labels.shape, dtype=bool)
        keep[:, :-1] = labels[:, 1:] != IGNORE  # position i predicts token i + 1
        logits = model(**inputs, logits_to_keep=keep).logits  # [learned, vocab]
        logits = logits.reshape(-1, logits.shape[-1])
        return F.cross_entropy(logits.float(), labels[:, 1:][keep[:, :-1]], reduction="sum")
    logits = model(**inputs).logits[:, -labels.shape[1] :]  # [rows, length, vocab]
    return F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(),
        labels[:, 1:].flatten(),
        ignore_index=IGNORE,
        reduction="sum",
    )


def seq2seq_loss(model, batch: dict, learned_only: bool = False):
    """Summed cross-entropy of every target token: `labels` [rows, target length] go to the
    model, which shifts them right into its decoder inputs; logits [rows, target, vocab]."""
    import torch.nn.functional as F

    labels = batch["labels"]
    logits = model(**batch).logits[:, -labels.shape[1] :]
    return F.cross_entropy(
        logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE, reduction="sum"
    )


def classify_loss(model, batch: dict, learned_only: bool = False):
    """Summed cross-entropy over the rows of `batch`, `labels` [rows] holding class ids."""
    return classify_eval(model, batch)[0]


def classify_eval(model, batch: dict) -> tuple:
    """(summed loss, rows classified right) from one forward pass. The labels stay out of
    the model's inputs: it would compute a mean loss of its own."""
    import torch.nn.functional as F

    logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits  # [rows, classes]
    loss = F.cross_entropy(logits.float(), batch["labels"], reduction="sum")
    return loss, int((logits.argmax(-1) == batch["labels"]).sum())


def input_tokens(batch: dict) -> int:
    """Tokens that are not padding: what tokens/s counts."""
    return int(batch["attention_mask"].sum())


def seq2seq_tokens(batch: dict) -> int:
    """Source and target tokens: the decoder reads as many as it learns."""
    return input_tokens(batch) + target_count(batch)


def causal_count(batch: dict) -> int:
    """Tokens the loss learns from: labels after the shift by one, not IGNORE."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def target_count(batch: dict) -> int:
    return int((batch["labels"] != IGNORE).sum())


def row_count(batch: dict) -> int:
    return int(batch["labels"].shape[0])


@dataclass(frozen=True)
class Objective:
    loss: Callable  # (model, batch, learned_only) -> summed loss, a 0-d tensor
    count: Callable  # (batch) -> learned units in the batch
    tokens: Callable  # (batch) -> its real (not padding) tokens, for tokens/s
    # (model, batch) -> (summed loss, right answers): objectives with an accuracy to report
    evaluate: Callable | None = None


OBJECTIVES = {
    "causal-lm": Objective(causal_lm_loss, causal_count, input_tokens),
    "seq2seq": Objective(seq2seq_loss, target_count, seq2seq_tokens),
    "classify": Objective(classify_loss, row_count, input_tokens, classify_eval),
}
