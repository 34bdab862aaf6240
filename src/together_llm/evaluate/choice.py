"""Multiple-choice accuracy by log-likelihood, and how well calibrated the choices are.

Each option is scored by the summed log-probability of its tokens after the question (the
context), the way lm-evaluation-harness scores its multiple-choice tasks:
- `acc`: the option with the highest summed log-probability is the answer.
- `acc_norm`: the same after dividing each option's sum by the option's length in
  characters (the harness divides by `len()` of the option string, its characters, without
  the space that joins it to the context). A long option collects more negative log-
  probability just by being long; per character, options of different lengths compare fairly.
- ECE (expected calibration error): the summed log-probabilities are turned into a
  distribution over the options with a softmax (unnormalized sums, so the probabilities are
  those the model gives each whole option, renormalized over the options offered); the
  confidence of an item is its highest probability, and it is right when that option (the
  `acc` answer) is the gold one. Items go into `bins` equal-width confidence bins over
  [0, 1] (lower edge included); ECE = sum over bins of (items in bin / items) * |accuracy in bin - mean confidence
  in bin|, 0 for a perfectly calibrated model.

The pure part (`choice_metrics`) works from the numbers alone; the model part
(`option_logprobs`, `multiple_choice`) gets them from a Hugging Face causal LM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ..errors import TllmError
from .perplexity import _device, _logits


@dataclass
class ChoiceItem:
    """One question's options: the summed log-probability of each, its length in characters,
    and the index of the right one."""

    logprobs: list[float]
    lengths: list[int]
    gold: int


@dataclass
class ChoiceMetrics:
    acc: float  # fractions in [0, 1], as the harness reports them
    acc_norm: float
    ece: float
    items: int

    def as_dict(self) -> dict:
        return asdict(self)


def _argmax(values: Sequence[float]) -> int:
    """The first index of the largest value (ties go to the earlier option, as numpy's)."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


def option_probabilities(logprobs: Sequence[float]) -> list[float]:
    """Softmax of the options' summed log-probabilities."""
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    return [w / total for w in weights]


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> float:
    """ECE over equal-width bins: bin k holds confidences in [k/bins, (k+1)/bins), the last
    bin [1 - 1/bins, 1] closed."""
    if not confidences or len(confidences) != len(correct):
        raise TllmError("calibration needs one correctness flag per confidence, and at least one")
    members: list[list[int]] = [[] for _ in range(bins)]
    for i, confidence in enumerate(confidences):
        members[min(int(confidence * bins), bins - 1)].append(i)
    error = 0.0
    for group in members:
        if group:
            accuracy = sum(correct[i] for i in group) / len(group)
            mean_confidence = sum(confidences[i] for i in group) / len(group)
            error += len(group) / len(confidences) * abs(accuracy - mean_confidence)
    return error


def choice_metrics(items: Sequence[ChoiceItem], bins: int = 10) -> ChoiceMetrics:
    """acc, acc_norm and ECE of scored items (see the module docstring for each)."""
    if not items:
        raise TllmError("no multiple-choice items to score")
    acc = acc_norm = 0
    confidences, correct = [], []
    for n, item in enumerate(items):
        if not (
            len(item.logprobs) == len(item.lengths) >= 2 and 0 <= item.gold < len(item.logprobs)
        ):
            raise TllmError(
                f"item {n} needs two or more options, one length per option and a "
                "gold index among them"
            )
        pick = _argmax(item.logprobs)
        # An empty option would divide by zero; one character is the least an option spans.
        pick_norm = _argmax(
            [lp / max(1, length) for lp, length in zip(item.logprobs, item.lengths)]
        )
        acc += pick == item.gold
        acc_norm += pick_norm == item.gold
        confidences.append(max(option_probabilities(item.logprobs)))
        correct.append(pick == item.gold)
    return ChoiceMetrics(
        acc=acc / len(items),
        acc_norm=acc_norm / len(items),
        ece=expected_calibration_error(confidences, correct, bins),
        items=len(items),
    )


# ------------------------------------------------------------------------- model part


def _encode(tokenizer, text: str) -> list[int]:
    """Token ids of `text` (special-token text such as a rendered chat template's parsed as
    tokens), with BOS in front when the tokenizer has one and the text did not bring it."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    bos = tokenizer.bos_token_id
    if bos is not None and (not ids or ids[0] != bos):
        ids = [bos] + ids
    return ids


def option_logprobs(
    model, tokenizer, context: str, options: Sequence[str], delimiter: str = " "
) -> list[float]:
    """Summed log-probability of each option's tokens after `context` + `delimiter`.

    The option's tokens are those the whole text (context, delimiter, option) has beyond the
    context's own tokens, as the harness splits them; whitespace that ends the context moves
    to the option's side, so the context tokenizes the same alone and in the whole. A text
    longer than the model's context loses context tokens from the left. One forward pass
    scores all options of the question."""
    import torch

    stripped = context.rstrip()
    moved = context[len(stripped) :] + delimiter
    context_ids = _encode(tokenizer, stripped)
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    rows = []  # (token ids, how many of them at the end are the option's)
    for option in options:
        whole = _encode(tokenizer, stripped + moved + option)
        if whole[: len(context_ids)] != context_ids or len(whole) == len(context_ids):
            # The tokenizer merged the context's last token with the option's first: score
            # the option's own tokens after the context's instead.
            whole = context_ids + list(
                tokenizer(moved + option, add_special_tokens=False)["input_ids"]
            )
        scored = len(whole) - len(context_ids)
        if scored == 0:
            raise TllmError(f"option {option!r} has no tokens to score")
        if limit and len(whole) > limit:
            if scored >= limit:
                raise TllmError(
                    f"option {option[:40]!r}... alone is longer than the model's "
                    f"context ({limit} tokens)"
                )
            whole = whole[len(whole) - limit :]  # keep the option and the context nearest it
        rows.append((whole, scored))
    width = max(len(row) for row, _ in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, (row, _) in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    device = _device(model)
    sums = []
    with torch.no_grad():
        logits = _logits(model, ids.to(device), mask.to(device))
        for i, (row, scored) in enumerate(rows):
            # The positions just before each option token predict it; only those are
            # normalized over the vocabulary.
            picked = logits[i, len(row) - scored - 1 : len(row) - 1].float()
            targets = torch.tensor(row[len(row) - scored :], device=picked.device)
            logprobs = torch.log_softmax(picked, dim=-1)
            sums.append(logprobs.gather(-1, targets.unsqueeze(-1)).sum().item())
    return sums


def multiple_choice(
    model, tokenizer, rows: Sequence[dict], delimiter: str = " ", bins: int = 10
) -> ChoiceMetrics:
    """acc, acc_norm and ECE of `model` on rows {"question": str, "choices": [str, ...],
    "answer": index or the right choice's text}."""
    golds = [_gold(row, n) for n, row in enumerate(rows)]  # every row checked before any work
    items = [
        ChoiceItem(
            option_logprobs(model, tokenizer, row["question"], row["choices"], delimiter),
            [len(choice) for choice in row["choices"]],
            gold,
        )
        for row, gold in zip(rows, golds)
    ]
    return choice_metrics(items, bins)


def _gold(row: dict, n: int) -> int:
    choices = row.get("choices")
    if (
        not isinstance(row.get("question"), str)
        or not isinstance(choices, list)
        or len(choices) < 2
        or not all(isinstance(choice, str) and choice for choice in choices)
    ):
        raise TllmError(
            f"multiple-choice row {n} needs a question and two or more non-empty choices"
        )
    answer = row.get("answer")
    if isinstance(answer, bool) or not isinstance(answer, (int, str)):
        raise TllmError(f"multiple-choice row {n}: answer must be a choice index or text")
    if isinstance(answer, str):
        if answer not in choices:
            raise TllmError(f"multiple-choice row {n}: answer {answer!r} is not one of its choices")
        return choices.index(answer)
    if not 0 <= answer < len(choices):
        raise TllmError(f"multiple-choice row {n}: answer index {answer} is out of range")
    return answer
