"""Answers generated for evaluation: greedy, bounded in length, and timed.

Every model compared answers the same prompts with the same settings (temperature 0, the
same `max_tokens`), so differences in the scores come from the models, not from sampling.
The time spent decoding gives the efficiency figure the report shows: generated tokens per
second of generation, prompt processing included (what a user waits for).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import ContextError, TllmError
from ..sampling import SamplingParams


@dataclass
class Answers:
    """The answer to each prompt, with how many tokens were generated and how long it took."""

    texts: list[str] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    too_long: int = 0  # prompts longer than the model's context: answered with ""

    @property
    def tokens_per_s(self) -> float | None:
        return self.tokens / self.seconds if self.seconds > 0 else None


def prompt_of(kind: str, row: dict) -> list[dict]:
    """The conversation a model answers for one row: a chat row's turns before its last
    assistant turn, a seq2seq row's source as the user's message (its context, for
    extractive QA, in front of it)."""
    if kind == "chat":
        messages = row["messages"]
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        return [dict(m) for m in messages[:last]]
    if kind == "seq2seq":
        source = row["source"] if not row.get("context") else f"{row['context']}\n\n{row['source']}"
        return [{"role": "user", "content": source}]
    raise TllmError(f"answers are generated for chat and seq2seq rows, not {kind}")


def reference_of(kind: str, row: dict) -> str:
    """The answer a row holds: a chat row's last assistant turn, a seq2seq row's target."""
    if kind == "chat":
        return [m for m in row["messages"] if m["role"] == "assistant"][-1]["content"]
    if kind == "seq2seq":
        return row["target"]
    raise TllmError(f"{kind} rows hold no reference answer")


def generate_answers(
    engine,
    prompts: Sequence[list[dict]],
    max_tokens: int,
    progress: Callable[[int], None] = lambda done: None,
) -> Answers:
    """Each prompt answered greedily by `engine` (engine/protocol.py), at most `max_tokens`
    tokens. A prompt the model's context cannot hold gets an empty answer (it scores 0, as
    a model that cannot read the question would) and is counted, rather than ending the run.
    `progress(done)` hears how many prompts are answered so far."""

    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    answers = Answers()
    for done, messages in enumerate(prompts, start=1):
        started = time.perf_counter()
        try:
            completion = engine.chat(messages, params).run()
        except ContextError:
            answers.too_long += 1
            answers.texts.append("")
        else:
            answers.seconds += time.perf_counter() - started
            answers.texts.append(completion.text)
            answers.tokens += completion.usage.completion_tokens
        progress(done)
    return answers
