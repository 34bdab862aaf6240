"""Knowledge grounding: the chunks retrieved for the last question go into its user turn
(knowledge/prompt.py says how, and why there), and the sources an answer cites are found
afterwards. The one place that decides whether knowledge is on and that opens the home's
retriever, for the terminal, the web chat and the API alike."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ..home import AssistantConfig, Home
from ..knowledge.prompt import Source, augment_messages, cited_sources
from ..knowledge.retrieve import Retriever


def knowledge_on(config: AssistantConfig, *choices: bool | None) -> bool:
    """The first of `choices` that is set (a request's, then a server's or a command's
    flag), else assistant.yaml's `knowledge`."""
    return next((choice for choice in choices if choice is not None), config.knowledge)


def last_question(messages: list[dict]) -> str:
    """The text of the last user turn (what the retrieval searches for)."""
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


@dataclass
class Knowledge:
    """What one answer retrieved: the sources numbered as in its prompt, and the question
    they were retrieved for (repeating the question is no proof of citing a source)."""

    sources: list[Source] = field(default_factory=list)
    question: str = ""

    def cited(self, *answers: str) -> list[Source]:
        """The sources the answers cite ([n] markers or quoted words), in id order."""
        if not self.sources:
            return []
        return cited_sources("\n".join(answers), self.sources, self.question)


class Grounding:
    """The home's retriever, opened on first use (most conversations never need it) and
    shared by the threads of a server (the retriever serialises its own work)."""

    def __init__(self, home: Home, config: AssistantConfig):
        self.home, self.config = home, config
        self._retriever: Retriever | None = None
        self._opening = threading.Lock()

    def open(self) -> Retriever:
        """The retriever, opened now if it is not yet (a command opens it before loading a
        model, so a knowledge problem is told first)."""
        with self._opening:
            if self._retriever is None:
                self._retriever = Retriever(
                    self.home, "auto", self.config.knowledge_embed_model or None
                )
            return self._retriever

    def ground(self, messages: list[dict]) -> tuple[list[dict], Knowledge]:
        """`messages` (a copy) with the chunks for the last question in its user turn."""
        question = last_question(messages)
        if not question.strip():
            return list(messages), Knowledge([], question)
        hits = self.open().hits(question, self.config.knowledge_top_k)
        grounded, sources = augment_messages(messages, hits)
        return grounded, Knowledge(sources, question)

    def close(self) -> None:
        if self._retriever is not None:
            self._retriever.close()
            self._retriever = None
