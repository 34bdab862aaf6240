"""LLM-as-judge: a model grades one answer on a 1-10 scale, or picks the better of two.

The prompts follow MT-Bench's single-answer and pairwise grading (a rating or a verdict in
double brackets, which parses reliably), in our own words. A pairwise question is asked twice,
with the answers in both orders: judges favour a position (usually the first), and a verdict
only counts when it names the same answer both times; otherwise the pair is a tie.

A judge is anything with `complete(messages) -> str`; `EngineJudge` wraps an engine (the
home's model, another home's, or an OpenAI-compatible endpoint) and decodes greedily. This
module loads no model itself, so tests pass a fake judge.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Protocol

from ..sampling import SamplingParams


class Judge(Protocol):
    def complete(self, messages: list[dict]) -> str: ...


class EngineJudge:
    """A judge backed by an Engine (from `engine.select.open_engine`), temperature 0 so the
    same question gets the same verdict."""

    def __init__(self, engine, max_tokens: int = 512, name: str | None = None):
        self.engine = engine
        self.max_tokens = max_tokens
        self.name = name  # what reports call the judge: the model or home it was opened as

    def complete(self, messages: list[dict]) -> str:
        params = SamplingParams(temperature=0.0, max_tokens=self.max_tokens)
        return self.engine.chat(messages, params).run().text


@dataclass
class JudgeStats:
    """How many judge replies were asked for and how many could not be read."""

    calls: int = 0
    unparseable: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------ single answer

GRADE_SYSTEM = (
    "You are a careful, impartial reviewer of an AI assistant's answers. Judge how helpful, "
    "correct, relevant, deep and clear the answer is for the user's question, and how much "
    "useful detail it gives. Do not reward length for its own sake. First explain your "
    "judgement in a few sentences, then give a score from 1 (useless) to 10 (excellent) on "
    'its own line, written exactly like this: "Rating: [[7]]".'
)


def grade_messages(question: str, answer: str, reference: str | None = None) -> list[dict]:
    """The judge's conversation for grading `answer` (against `reference` when given: a
    known right answer, for questions with one)."""
    parts = [f"[Question]\n{question}"]
    if reference is not None:
        parts.append(f"[Reference answer, known to be right]\n{reference}")
    parts.append(f"[Assistant's answer]\n{answer}")
    return [
        {"role": "system", "content": GRADE_SYSTEM},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


_NUMBER = r"(\d+(?:\.\d+)?)"
# From the form we asked for to looser ones; the first form found in the reply decides. The
# looser forms skip a number followed by "/N" for N other than 10 ("Score: 4/5" is on
# another scale).
_RATING_FORMS = [
    re.compile(rf"\[\[\s*{_NUMBER}\s*\]\]"),
    re.compile(rf"rating\W{{0,4}}\s*\[?\s*{_NUMBER}\b(?!\s*/\s*(?!10\b)\d)", re.IGNORECASE),
    re.compile(rf"\bscore\W{{0,4}}\s*\[?\s*{_NUMBER}\b(?!\s*/\s*(?!10\b)\d)", re.IGNORECASE),
    re.compile(rf"\b{_NUMBER}\s*/\s*10\b"),
]


def parse_rating(reply: str) -> float | None:
    """The 1-10 score in a judge's reply, or None when there is none, it is out of range,
    or the reply gives different scores in the same form (no guessing)."""
    for form in _RATING_FORMS:
        values = {float(match) for match in form.findall(reply)}
        if values:
            if len(values) != 1:
                return None
            value = values.pop()
            return value if 1 <= value <= 10 else None
    return None


def grade(
    judge: Judge,
    question: str,
    answer: str,
    reference: str | None = None,
    stats: JudgeStats | None = None,
) -> float | None:
    """The judge's 1-10 score of `answer`, or None when its reply has no readable score
    (counted in `stats.unparseable`)."""
    reply = judge.complete(grade_messages(question, answer, reference))
    score = parse_rating(reply)
    if stats is not None:
        stats.calls += 1
        stats.unparseable += score is None
    return score


# ------------------------------------------------------------------------------ pairwise

PAIR_SYSTEM = (
    "You are a careful, impartial reviewer comparing the answers of two AI assistants to the "
    "same user question. Decide which answer serves the user better: more helpful, correct, "
    "relevant, deep and clear. The order in which the answers appear must not sway you, nor "
    "their length, nor the assistants' names. Explain your comparison briefly, then give your "
    'verdict on its own line, written exactly as one of: "[[A]]" if assistant A is better, '
    '"[[B]]" if assistant B is better, "[[C]]" for a tie.'
)


def pair_messages(question: str, first: str, second: str) -> list[dict]:
    """The judge's conversation comparing `first` (shown as A) with `second` (shown as B)."""
    user = (
        f"[Question]\n{question}\n\n[Assistant A's answer]\n{first}\n\n"
        f"[Assistant B's answer]\n{second}"
    )
    return [{"role": "system", "content": PAIR_SYSTEM}, {"role": "user", "content": user}]


_VERDICT_FORMS = [
    re.compile(r"\[\[\s*([ABC])\s*\]\]"),
    re.compile(r"verdict\W{0,4}\s*\[?\s*(?:assistant\s+)?([ABC])\b", re.IGNORECASE),
]


def parse_verdict(reply: str) -> str | None:
    """ "A", "B" or "C" (tie) from a judge's reply; None when absent or contradictory."""
    for form in _VERDICT_FORMS:
        values = {match.upper() for match in form.findall(reply)}
        if values:
            return values.pop() if len(values) == 1 else None
    return None


@dataclass
class PairJudgement:
    """The outcome ("a", "b" or "tie") and what the judge said in each order: `a_first` with
    answer a shown as A, `b_first` with answer b shown as A, each "a", "b", "tie" or None
    (unreadable)."""

    winner: str
    a_first: str | None
    b_first: str | None

    @property
    def consistent(self) -> bool:
        """Whether the judge named the same outcome in both orders."""
        return self.a_first is not None and self.a_first == self.b_first


def _ask_pair(judge: Judge, question: str, first: str, second: str, stats: JudgeStats | None):
    verdict = parse_verdict(judge.complete(pair_messages(question, first, second)))
    if stats is not None:
        stats.calls += 1
        stats.unparseable += verdict is None
    return verdict


def judge_pair(
    judge: Judge, question: str, answer_a: str, answer_b: str, stats: JudgeStats | None = None
) -> PairJudgement:
    """Ask with a shown first, then with b shown first; the winner is the answer named in
    both orders, else "tie" (position bias, a tie verdict or an unreadable reply)."""
    as_answer = {"A": "a", "B": "b", "C": "tie"}
    swapped = {"A": "b", "B": "a", "C": "tie"}
    first = _ask_pair(judge, question, answer_a, answer_b, stats)
    second = _ask_pair(judge, question, answer_b, answer_a, stats)
    a_first = as_answer[first] if first else None
    b_first = swapped[second] if second else None
    winner = a_first if a_first is not None and a_first == b_first else "tie"
    return PairJudgement(winner, a_first, b_first)


def compare(
    judge: Judge, question: str, answer_a: str, answer_b: str, stats: JudgeStats | None = None
) -> str:
    """ "a", "b" or "tie": which answer the judge prefers in both orders."""
    return judge_pair(judge, question, answer_a, answer_b, stats).winner
