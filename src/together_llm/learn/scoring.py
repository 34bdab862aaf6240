"""Answering held-out questions greedily, and scoring the answers.

Every version compared answers the same questions, in fresh conversations with the home's
system prompt (what `tllm ask` sends), greedily and with the same length bound, so the
scores differ only by the adapter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..sampling import SamplingParams
from .questions import holds

ANSWER_TOKENS = 40  # every held-out answer, and the base's recorded ones


Turns = tuple[tuple[str, str], ...]  # a conversation as (role, content), for frozen records


def conversation(system_prompt: str, asked: str | Turns) -> list[dict]:
    """The messages a question is asked in: the home's system prompt, unless the
    conversation (a corrected one) brings its own, then the question or the conversation."""
    turns: Turns = (("user", asked),) if isinstance(asked, str) else asked
    messages = [{"role": role, "content": content} for role, content in turns]
    if system_prompt and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def answer_all(
    engine,
    system_prompt: str,
    questions: Sequence[str | Turns],
    max_tokens: int,
    whole: bool = False,
) -> list[str]:
    """Each question (or conversation) answered alone. `whole`: an answer cut by
    `max_tokens` loses its unfinished last sentence (a row taught from it must not teach
    stopping mid-sentence)."""
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    answers = []
    for question in questions:
        completion = engine.chat(conversation(system_prompt, question), params).run()
        text = completion.text.strip()
        if whole and completion.finish_reason == "length":
            ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", text)]
            text = text[: ends[-1]] if ends else ""
        answers.append(text)
    return answers


def holds_word(answer: str, word: str) -> bool:
    """Whether `answer` holds `word` as a word (or a word's start: "Shakespeare's")."""
    return re.search(rf"\b{re.escape(word)}", answer, re.IGNORECASE) is not None


@dataclass(frozen=True)
class Question:
    """A held-out question and how its answer is judged: `keys` (a memory's key content,
    questions.holds) or `word` (a general probe's expected word). A correction's question
    is asked in its own conversation (`turns`)."""

    text: str
    keys: tuple[str, ...] = ()
    word: str = ""
    memory: int | None = None
    turns: Turns = ()
    correction: int | None = None  # its line in feedback/corrections.jsonl

    @property
    def asked(self) -> str | Turns:
        return self.turns or self.text

    def right(self, answer: str) -> bool:
        return holds_word(answer, self.word) if self.word else holds(answer, self.keys)


@dataclass(frozen=True)
class Scored:
    """One model's answers to one set, and the fraction right (None: an empty set)."""

    answers: tuple[str, ...]
    right: tuple[bool, ...]

    @property
    def score(self) -> float | None:
        return sum(self.right) / len(self.right) if self.right else None


def score(
    engine, system_prompt: str, questions: Sequence[Question], max_tokens: int = ANSWER_TOKENS
) -> Scored:
    answers = answer_all(engine, system_prompt, [q.asked for q in questions], max_tokens)
    return Scored(tuple(answers), tuple(q.right(a) for q, a in zip(questions, answers)))
