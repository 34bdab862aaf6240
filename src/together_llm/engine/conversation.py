"""A multi-turn conversation that keeps itself inside the model's context window."""

from __future__ import annotations

from ..errors import ContextError
from .protocol import Engine, Generation
from .sampling import SamplingParams


class Conversation:
    """The system prompt and the turns so far.

    `ask` renders the conversation plus a new message; when that leaves too little room
    for an answer, the oldest exchanges are left out (of a copy: nothing is lost if the
    new message cannot be answered at all). `record` commits the message and its answer.
    """

    def __init__(self, system: str = ""):
        self.system = system
        self.turns: list[dict] = []
        self._pending: list[dict] | None = None

    def messages(self, turns: list[dict] | None = None) -> list[dict]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + (self.turns if turns is None else turns)

    def reset(self, system: str | None = None) -> None:
        if system is not None:
            self.system = system
        self.turns, self._pending = [], None

    def ask(self, engine: Engine, text: str, params: SamplingParams) -> Generation:
        """Start the answer to `text`, forgetting old exchanges if the context is full."""
        turns = self.turns + [{"role": "user", "content": text}]
        if not engine.counts_tokens:  # a remote model fits its own context
            self._pending = turns
            return engine.chat(self.messages(turns), params)
        # room for a useful answer: the asked length, up to a quarter of the context
        room = min(params.max_tokens, max(1, engine.context_length // 4))
        while True:
            ids = engine.tokenize(engine.render(self.messages(turns)))
            if len(ids) + room <= engine.context_length:
                break
            if len(turns) <= 1:
                raise ContextError(
                    f"this message needs {len(ids)} tokens of the {engine.context_length}-token "
                    f"context, leaving less than {room} for the answer; shorten it or raise "
                    "`tllm config set context_length N`")
            turns = turns[2:]  # forget the oldest exchange (user + assistant)
        self._pending = turns
        return engine.generate(ids, params)

    def record(self, answer: str) -> None:
        """Keep the last asked message and its answer in the history."""
        if self._pending is not None:
            self.turns = self._pending + [{"role": "assistant", "content": answer}]
            self._pending = None
