"""Sampling parameters shared by every engine and every front end (CLI, API)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import TllmError


@dataclass
class SamplingParams:
    """How to pick each next token and when to stop."""

    temperature: float = 0.7  # 0 = greedy: the most likely token every time
    top_p: float = 0.95  # nucleus: smallest set of tokens holding this much probability
    top_k: int = 40  # only the k most likely tokens; 0 = all
    max_tokens: int = 512  # longest answer; the context may cut it shorter
    repetition_penalty: float = 1.0  # >1 discourages tokens already in prompt or answer
    presence_penalty: float = 0.0  # OpenAI style: flat penalty for any token already used
    frequency_penalty: float = 0.0  # OpenAI style: penalty growing with each use
    stop: list[str] = field(default_factory=list)  # the answer ends before any of these
    seed: int | None = None  # same seed + same prompt = same answer
    grammar: str | None = None  # GBNF (rule `root`) the answer must match; llama.cpp engines
    logprobs: int | None = None  # record each token's log-probability and this many alternatives

    def __post_init__(self):
        checks = [
            (0 <= self.temperature <= 2, "temperature must be between 0 and 2"),
            (0 < self.top_p <= 1, "top_p must be above 0 and at most 1"),
            (self.top_k >= 0, "top_k must be 0 or more"),
            (self.max_tokens >= 1, "max_tokens must be at least 1"),
            (0 < self.repetition_penalty <= 2, "repetition_penalty must be above 0 and at most 2"),
            (-2 <= self.presence_penalty <= 2, "presence_penalty must be between -2 and 2"),
            (-2 <= self.frequency_penalty <= 2, "frequency_penalty must be between -2 and 2"),
            (
                all(isinstance(s, str) and s for s in self.stop),
                "stop sequences must be non-empty text",
            ),
            (
                self.seed is None or 0 <= self.seed < 2**32 - 1,
                "seed must be between 0 and 4294967294",
            ),
            (
                self.logprobs is None or 0 <= self.logprobs <= 20,
                "logprobs must be between 0 and 20",
            ),
            (
                self.grammar is None
                or (isinstance(self.grammar, str) and self.grammar.strip() != ""),
                "grammar must be non-empty GBNF text",
            ),
        ]
        numbers = (
            self.temperature,
            self.top_p,
            self.repetition_penalty,
            self.presence_penalty,
            self.frequency_penalty,
        )
        if not all(math.isfinite(x) for x in numbers):
            raise TllmError("sampling parameters must be finite numbers")
        for ok, message in checks:
            if not ok:
                raise TllmError(message)

    @classmethod
    def with_defaults(cls, defaults, **given) -> SamplingParams:
        """`given` values, with assistant.yaml's generation defaults (a GenerationDefaults)
        for the ones that are None."""
        fields = ("temperature", "top_p", "top_k", "max_tokens", "repetition_penalty", "seed")
        chosen = {name: getattr(defaults, name) for name in fields}
        chosen.update({name: value for name, value in given.items() if value is not None})
        return cls(**chosen)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0
