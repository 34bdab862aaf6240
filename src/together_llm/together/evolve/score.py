"""Fitness in `tllm together evolve`: how well one adapter does on the home's own evaluation
rows, with the base and every adapter loaded once in one PEFT model.

- loss: the mean negative log-likelihood per scored token, as `tllm eval`'s perplexity
  computes it (evaluate/perplexity.py): a chat row's answer tokens, a text row's every
  token. Lower is better.
- accuracy (chat data with short answers): the share of rows whose every answer token is
  the model's most likely next token given the conversation and the reference so far, that
  is, rows where greedy decoding writes the reference answer exactly, end-of-turn included.
  One forward pass a row instead of a generation loop; stricter than `tllm eval`'s
  normalized exact match (case and punctuation count). Higher is better; ties are broken by
  the loss of the answer tokens, computed in the same pass, so two equally accurate
  adapters are still ordered by how sure they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...data.store import open_dataset
from ...errors import RefusedError, TllmError
from ...evaluate.perplexity import perplexity
from ...evaluate.run import sample_rows
from ...train.inputs.encode import IGNORE, encode_chat

METRICS = ("loss", "accuracy")
KINDS = {"loss": ("chat", "text"), "accuracy": ("chat",)}


@dataclass
class EvalRows:
    """The rows every adapter is scored on, and where they came from."""

    data: str
    kind: str
    split: str | None
    rows: list[dict]


def load_eval_rows(home, data: str, metric: str, limit: int, seed: int) -> EvalRows:
    """The evaluation rows of dataset `data` (its eval split when it has one, else all of it,
    at most `limit` drawn evenly), refused when `metric` does not apply to its kind."""

    if metric not in METRICS:
        raise RefusedError(f"unknown fitness metric {metric!r}: choose {' or '.join(METRICS)}")
    dataset = open_dataset(home, data)
    if dataset.kind not in KINDS[metric]:
        hint = (
            " (use --metric loss for text data)"
            if dataset.kind == "text"
            else "; evolve scores causal chat or text data"
        )
        raise RefusedError(
            f"--metric {metric} needs {' or '.join(KINDS[metric])} data; dataset "
            f"{data!r} is {dataset.kind}{hint}"
        )
    if limit < 1:
        raise TllmError("--limit must be at least 1")
    split = "eval" if dataset.has_splits else None
    rows = sample_rows(dataset.rows(split), limit, seed)
    if not rows:
        raise TllmError(f"dataset {data!r} has no rows to evaluate on")
    return EvalRows(data, dataset.kind, split, rows)


def score(model, tokenizer, evaluation: EvalRows, metric: str) -> dict:
    """{"loss": ...} or {"accuracy": ..., "loss": ...} of `model` with its active adapter(s)."""
    if metric == "loss":
        return {"loss": perplexity(model, tokenizer, evaluation.rows, evaluation.kind).nll}
    return greedy_accuracy(model, tokenizer, evaluation.rows)


def greedy_accuracy(model, tokenizer, rows: list[dict], batch_size: int = 8) -> dict:
    """{"accuracy", "loss"}: the share of chat rows whose answer tokens are all the most likely
    ones, and the mean loss of those tokens."""
    import torch

    context = int(getattr(model.config, "max_position_embeddings", 0) or 0)
    examples = []
    for n, row in enumerate(rows, start=1):
        example = encode_chat(row, tokenizer)
        if example is None:
            continue  # no assistant turn: nothing to answer
        if context and len(example["input_ids"]) > context:
            raise TllmError(
                f"evaluation row {n} has {len(example['input_ids'])} tokens, more than "
                f"the model's context ({context}); use --metric loss, which slides "
                "a window over long rows"
            )
        examples.append(example)
    if not examples:
        raise TllmError("nothing to score: no evaluation row has an assistant answer")
    right, total_nll, tokens = 0, 0.0, 0
    model.eval()
    with torch.no_grad():
        for at in range(0, len(examples), batch_size):
            batch = examples[at : at + batch_size]
            width = max(len(e["input_ids"]) for e in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            mask = torch.zeros(len(batch), width, dtype=torch.long)
            labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
            for i, e in enumerate(batch):  # padded on the right, which a causal model ignores
                length = len(e["input_ids"])
                ids[i, :length] = torch.tensor(e["input_ids"])
                mask[i, :length] = 1
                labels[i, :length] = torch.tensor(e["labels"])
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            targets = labels[:, 1:]  # position t's logits predict token t+1
            scored = targets != IGNORE
            logprobs = torch.log_softmax(logits, dim=-1)
            picked = logprobs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            total_nll -= picked[scored].sum().item()
            tokens += int(scored.sum())
            hits = (logits.argmax(-1) == targets) | ~scored
            right += int(hits.all(dim=1).sum())
    return {"accuracy": right / len(examples), "loss": total_nll / max(1, tokens)}


def sort_key(metric: str, scores: dict) -> tuple:
    """Ascending order of fitness: the best adapter first."""
    if metric == "accuracy":
        return (-scores["accuracy"], scores["loss"])
    return (scores["loss"],)


def beats(metric: str, mine: dict, theirs: dict) -> bool:
    """Whether scores `mine` are strictly better than `theirs`."""
    return sort_key(metric, mine) < sort_key(metric, theirs)


def describe(metric: str, scores: dict) -> str:
    if metric == "accuracy":
        return f"accuracy {scores['accuracy']:.3f} (loss {scores['loss']:.4f})"
    return f"loss {scores['loss']:.4f}"
