"""The answers behind the web chat's Chat tab: plain, "Answer from my documents" and "Agent
with tools", as generators that yield the conversation as it grows (what Gradio streams).

Every answer comes from the assistant's core (assistant/answer.py), as the API's and the
terminal's do: the same system prompt, sampling, grounding in the documents, citations and
agent; this module only turns its events into what the page shows.

What the model said and what the page adds to it are kept apart: the sources and the agent's
steps are *notes*, Chatbot messages with a `metadata` title (Gradio draws them as collapsible
boxes). A note never goes back into a prompt, a rating or a preference: those hold the
conversation only, the plain questions and answers, as `tllm chat` keeps them.

Nothing here builds the page, so tests drive these functions without a browser.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI

from ..agent.presets import step_line
from ..assistant.answer import (
    AgentStep,
    AnswerOptions,
    CitedSources,
    Event,
    Finished,
    TextPiece,
)
from ..errors import TllmError
from ..knowledge.index import KnowledgeIndex, index_path
from ..knowledge.prompt import Source

ASSISTANT = "(assistant)"  # the assistant as configured: its model with its active adapters
SOURCES_TITLE = "Sources"
STEPS_TITLE = "Agent steps"


def text_of(content) -> str:
    """Chatbot message content as plain text (Gradio may hand back a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in content
        )
    return str(content or "")


def is_note(message: dict) -> bool:
    """True for what the page added (sources, agent steps), not said in the conversation."""
    return bool((message.get("metadata") or {}).get("title"))


def prompt_of(history: list[dict], system: str, upto: int) -> list[dict]:
    """The conversation an answer at `upto` replied to, with the system prompt, without notes."""
    head = [{"role": "system", "content": system}] if system.strip() else []
    return head + [
        {"role": m["role"], "content": text_of(m["content"])}
        for m in history[:upto]
        if not is_note(m)
    ]


def answers(history: list[dict]) -> list[int]:
    """Indexes of the assistant's answers in `history` (notes left out)."""
    return [i for i, m in enumerate(history) if m["role"] == "assistant" and not is_note(m)]


# --- the "Answer from my documents" box --------------------------------------------------


def document_count(home) -> int:
    """How many documents the home's knowledge index holds (0 without an index)."""

    if not index_path(home).exists():
        return 0
    with KnowledgeIndex.open(home) as index:
        return len(index.documents())


def knowledge_box(app: FastAPI) -> dict:
    """The box's state now: ticked as the server is set, or off and disabled with a hint
    while the home has no documents (read again on each page load)."""
    try:
        count = document_count(app.state.home)
    except TllmError as exc:  # e.g. an index written by a newer version: say so, keep the chat
        return {"value": False, "interactive": False, "info": str(exc)}
    if not count:
        return {
            "value": False,
            "interactive": False,
            "info": "No documents yet: add some with `tllm knowledge add PATH`, then reload.",
        }
    return {
        "value": app.state.assistant.knowledge_on(AnswerOptions()),  # the server's switch
        "interactive": True,
        "info": f"{count} document{'s' if count != 1 else ''} indexed; the cited ones are listed "
        "under the answer.",
    }


def sources_note(sources: list[Source]) -> dict | None:
    """The note listing the cited sources (as `sources` in the API), or None when none was."""
    if not sources:
        return None
    lines = []
    for source in (s.to_dict() for s in sources):
        page = f", page {source['page']}" if source.get("page") else ""
        how = "" if source["cited_by"] == "marker" else " (quoted; the model gave no number)"
        path = source["source"].replace("`", "'")
        lines.append(f"- [{source['id']}] {_plain(source['title'] or '')} — `{path}`{page}{how}")
    return {"role": "assistant", "content": "\n".join(lines), "metadata": {"title": SOURCES_TITLE}}


# --- the agent's steps -------------------------------------------------------------------


def step_markdown(step) -> str:
    """One ReAct step as a line of the steps note."""

    return step_line(step, bold=True, escape=_plain)


_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~$])")


def _plain(text: str) -> str:
    """`text` shown as written: Markdown and HTML in a document or a tool's output are
    escaped, and line breaks kept."""
    return "  \n".join(_MARKDOWN.sub(r"\\\1", line) for line in str(text).splitlines())


# --- answering ---------------------------------------------------------------------------


class ChatAnswers:
    """`ChatAnswers(app).answer(history, model, system, knowledge, agent)` yields `history`
    with the assistant's reply (and its notes) growing, until it is whole."""

    def __init__(self, app: FastAPI):
        self.pool, self.assistant = app.state.engines, app.state.assistant

    def answer(
        self,
        history: list[dict],
        model: str,
        system: str,
        knowledge: bool = False,
        agent: bool = False,
        attempt: int = 0,
    ) -> Iterator[list[dict]]:
        """Reply to the last user message of `history`; `attempt` > 0 (regenerate) moves a
        configured seed on, so a sampled answer can differ. With `agent`, the agent searches
        the documents itself (its knowledge_search tool), as `tllm chat --agent` does, and
        its steps fill a note while it works."""
        engine = self.pool.get(None if model == ASSISTANT else model)
        options = AnswerOptions(system=system, knowledge=knowledge, agent=agent, attempt=attempt)
        conversation = prompt_of(history, "", len(history))
        events = self.assistant.answer(engine, conversation, options)
        if agent:
            yield from self._agent(history, events)
            return
        history = history + [{"role": "assistant", "content": ""}]
        yield history  # the answer's bubble appears at once, even if it stays empty
        for event in events:
            if isinstance(event, TextPiece):
                history[-1]["content"] += event.text
                yield history
            elif isinstance(event, CitedSources) and (note := sources_note(event.sources)):
                yield history + [note]

    def _agent(self, history: list[dict], events: Iterator[Event]) -> Iterator[list[dict]]:
        """The agent's steps in a note as they happen, then its answer."""
        started = time.monotonic()
        note: dict[str, Any] = {
            "role": "assistant",
            "content": "",
            "metadata": {"title": STEPS_TITLE, "status": "pending"},
        }
        history = history + [note]
        yield history
        answer = ""  # the agent always finishes with an answer (or raises)
        try:
            for event in events:
                if isinstance(event, AgentStep) and event.step.kind != "answer":
                    note["content"] += ("\n\n" if note["content"] else "") + step_markdown(
                        event.step
                    )
                    yield history
                elif isinstance(event, Finished):
                    answer = event.completion.text
        finally:  # done, or failed (the page shows the error): the note stops spinning
            duration = round(time.monotonic() - started, 1)
            note["metadata"] = {"title": STEPS_TITLE, "duration": duration}
        yield history + [{"role": "assistant", "content": answer}]
