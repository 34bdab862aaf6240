"""The figures of one evaluated model: perplexity, multiple choice, text metrics of its
generated answers, and the judge's grades and pairwise verdicts, as flat dicts of numbers
(the columns of the report).

Robustness is HELM's worst case: each item scores the lower of its result on the original
prompt and on the perturbed one, and those are averaged; it is computed for the per-item
accuracy metrics (exact match, token F1, ROUGE-L, acc, acc_norm), not for corpus-level BLEU
and chrF.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import ContextError, RefusedError
from . import text_metrics as tm
from .choice import ChoiceItem, _gold, choice_metrics, option_logprobs
from .generate import prompt_of, reference_of
from .judge import JudgeStats, grade, judge_pair
from .perplexity import perplexity


def _weights(engine):
    """(model, tokenizer) of a transformers engine, for the metrics that read probabilities."""
    if getattr(engine, "seq2seq", False):
        raise RefusedError(
            "ppl and mc score a causal language model's next-token "
            "probabilities; this model is an encoder-decoder: measure its "
            "generated answers (rouge, bleu, chrf, em, f1, judge) instead"
        )
    return engine.model, engine.tokenizer


def perplexity_scores(engine, rows: list[dict], kind: str, settings) -> dict:
    model, tokenizer = _weights(engine)
    started = time.perf_counter()
    result = perplexity(model, tokenizer, rows, kind, settings.window, settings.stride)
    seconds = time.perf_counter() - started
    return {
        "perplexity": result.perplexity,
        "nll": result.nll,
        "scored_tokens": result.tokens,
        "scored_tokens_per_s": result.tokens / seconds if seconds > 0 else None,
    }


def choice_scores(engine, rows: list[dict], perturbed: list[dict] | None, tick) -> dict:
    """acc, acc_norm and ECE as choice.py computes them; with perturbed rows, the worst case
    of each item over its original and perturbed question (HELM's robustness)."""

    model, tokenizer = _weights(engine)

    def items(batch: list[dict]) -> list:
        out = []
        for n, row in enumerate(batch):
            gold = _gold(row, n)
            out.append(
                ChoiceItem(
                    option_logprobs(model, tokenizer, row["question"], row["choices"]),
                    [len(choice) for choice in row["choices"]],
                    gold,
                )
            )
            tick()
        return out

    original = items(rows)
    scores = choice_metrics(original).as_dict()
    scores.pop("items")
    if perturbed is not None:
        noisy = items(perturbed)
        for key, norm in (("acc", False), ("acc_norm", True)):
            pairs = zip(_hits(original, norm), _hits(noisy, norm))
            scores[f"robust_{key}"] = _mean([min(a, b) for a, b in pairs])
    return scores


def _hits(items, norm: bool) -> list[int]:
    """1 where the item's top option (per character with `norm`) is the gold one; ties go
    to the earlier option, as choice.py breaks them."""
    out = []
    for item in items:
        values = (
            [lp / max(1, n) for lp, n in zip(item.logprobs, item.lengths)]
            if norm
            else item.logprobs
        )
        out.append(int(max(range(len(values)), key=lambda i: (values[i], -i)) == item.gold))
    return out


def generation_scores(
    texts: list[str], references: list[str], metrics: list[str], perturbed: list[str] | None = None
) -> dict:
    """The text metrics asked for, 0-100; with the answers to perturbed prompts, the worst
    case per item of exact match, token F1 and ROUGE-L (the per-item ones)."""

    scores: dict = {}
    if "rouge" in metrics:
        found = tm.rouge(texts, references)
        scores.update({key: found[key] for key in ("rouge1", "rouge2", "rougeL")})
    if "bleu" in metrics:
        scores["bleu"] = tm.bleu(texts, references)
    if "chrf" in metrics:
        scores["chrf"] = tm.chrf(texts, references)
    if "em" in metrics:
        scores["exact_match"] = tm.exact_match(texts, references)
    if "f1" in metrics:
        scores["token_f1"] = tm.token_f1(texts, references)
    if perturbed is not None:
        per_item = {
            "em": ("exact_match", lambda p, r: 100.0 * tm.exact_match_one(p, r)),
            "f1": ("token_f1", lambda p, r: 100.0 * tm.token_f1_one(p, r)),
            "rouge": ("rougeL", lambda p, r: tm.rouge([p], [r])["rougeL"]),
        }
        for metric, (key, score) in per_item.items():
            if metric in metrics:
                scores[f"robust_{key}"] = _mean(
                    [min(score(a, r), score(b, r)) for a, b, r in zip(texts, perturbed, references)]
                )
    return scores


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def question_text(messages: list[dict]) -> str:
    """What the judge reads as the question: the user's message, or for a longer
    conversation the whole transcript up to the answer."""
    turns = [m for m in messages if m["role"] != "system"]
    if len(turns) == 1:
        return turns[0]["content"]
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)


def judge_answers(plan, judge, answers: dict, results: dict, tick) -> dict:
    """Grades of every side's answers (1-10, the reference shown), and the subject against
    the base in both orders (judge.py), when both answered."""

    stats = JudgeStats()
    judge = _Patient(judge)
    questions = [question_text(prompt_of(plan.kind, row)) for row in plan.rows]
    references = [reference_of(plan.kind, row) for row in plan.rows]
    grades: dict[str, list[float | None]] = {}  # per side, each answer's grade
    for role, texts in answers.items():
        grades[role] = []
        for question, answer, reference in zip(questions, texts, references):
            grades[role].append(grade(judge, question, answer, reference, stats))
            tick()
        results[role]["judge_score"] = _mean(grades[role])
        results[role]["judge_unreadable"] = sum(g is None for g in grades[role])
    verdicts: list[dict[str, Any]] = []  # {"outcome": "win"/"tie"/"loss", "consistent": bool}
    pairwise = None
    if "base" in answers:
        outcome = {"a": "win", "b": "loss", "tie": "tie"}
        for question, mine, theirs in zip(questions, answers["subject"], answers["base"]):
            pair = judge_pair(judge, question, mine, theirs, stats)
            verdicts.append({"outcome": outcome[pair.winner], "consistent": pair.consistent})
            tick()
        pairwise = {
            plural: sum(v["outcome"] == one for v in verdicts)
            for plural, one in (("wins", "win"), ("ties", "tie"), ("losses", "loss"))
        }
        pairwise["consistent"] = sum(v["consistent"] for v in verdicts)
        pairwise["pairs"] = len(verdicts)
    return {
        "name": getattr(judge, "name", None) or plan.judge,
        "grades": grades,
        "verdicts": verdicts,
        "pairwise": pairwise,
        "stats": {**stats.as_dict(), "too_long": judge.too_long},
    }


class _Patient:
    """A judge whose context a question cannot fit in gives no verdict for that question
    (counted as unreadable and as `too_long`) instead of ending the run and losing the
    answers generated so far."""

    def __init__(self, judge):
        self.judge, self.too_long = judge, 0
        self.name = getattr(judge, "name", None)

    def complete(self, messages: list[dict]) -> str:
        try:
            return self.judge.complete(messages)
        except ContextError:
            self.too_long += 1
            return ""
