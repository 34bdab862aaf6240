"""The answers behind the web chat's Chat tab: plain, "Answer from my documents" and "Agent
with tools", as generators that yield the conversation as it grows (what Gradio streams).

Knowledge goes through the API's own path: the app's one retriever (knowledge_api.py),
`augment_messages` to put the retrieved chunks in the last user turn and the API's
`Knowledge.cited` to find the sources the answer cites. The agent is the one `tllm ask
--agent` runs (agent/session.py), its steps passed here as they happen.

What the model said and what the page adds to it are kept apart: the sources and the agent's
steps are *notes*, Chatbot messages with a `metadata` title (Gradio draws them as collapsible
boxes). A note never goes back into a prompt, a rating or a preference: those hold the
conversation only, the plain questions and answers, as `tllm chat` keeps them.

Nothing here builds the page, so tests drive these functions without a browser.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from typing import Iterator

from fastapi import FastAPI

from ..errors import TllmError
from ..knowledge.prompt import augment_messages
from .knowledge_api import Knowledge, shared_retriever

ASSISTANT = "(assistant)"  # the assistant as configured: its model with its active adapters
SOURCES_TITLE = "Sources"
STEPS_TITLE = "Agent steps"


def text_of(content) -> str:
    """Chatbot message content as plain text (Gradio may hand back a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return str(content or "")


def is_note(message: dict) -> bool:
    """True for what the page added (sources, agent steps), not said in the conversation."""
    return bool((message.get("metadata") or {}).get("title"))


def prompt_of(history: list[dict], system: str, upto: int) -> list[dict]:
    """The conversation an answer at `upto` replied to, with the system prompt, without notes."""
    head = [{"role": "system", "content": system}] if system.strip() else []
    return head + [{"role": m["role"], "content": text_of(m["content"])}
                   for m in history[:upto] if not is_note(m)]


def answers(history: list[dict]) -> list[int]:
    """Indexes of the assistant's answers in `history` (notes left out)."""
    return [i for i, m in enumerate(history) if m["role"] == "assistant" and not is_note(m)]


# --- the "Answer from my documents" box --------------------------------------------------

def knowledge_default(app: FastAPI) -> bool:
    """The server's setting: `tllm serve --knowledge/--no-knowledge`, else assistant.yaml."""
    served = app.state.settings.knowledge
    return app.state.config.knowledge if served is None else served


def document_count(home) -> int:
    """How many documents the home's knowledge index holds (0 without an index)."""
    from ..knowledge.index import KnowledgeIndex, index_path

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
        return {"value": False, "interactive": False,
                "info": "No documents yet: add some with `tllm knowledge add PATH`, then reload."}
    return {"value": knowledge_default(app), "interactive": True,
            "info": f"{count} document{'s' if count != 1 else ''} indexed; the cited ones are listed "
                    "under the answer."}


def sources_note(cited: list[dict]) -> dict | None:
    """The note listing the cited sources (as `sources` in the API), or None when none was."""
    if not cited:
        return None
    lines = []
    for source in cited:
        page = f", page {source['page']}" if source.get("page") else ""
        how = "" if source["cited_by"] == "marker" else " (quoted; the model gave no number)"
        path = source["source"].replace("`", "'")
        lines.append(f"- [{source['id']}] {_plain(source['title'] or '')} — `{path}`{page}{how}")
    return {"role": "assistant", "content": "\n".join(lines), "metadata": {"title": SOURCES_TITLE}}


# --- the agent's steps -------------------------------------------------------------------

def step_markdown(step) -> str:
    """One ReAct step as a line of the steps note."""
    from ..agent.session import step_line

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
        self.app = app
        self.pool, self.config, self.home = app.state.engines, app.state.config, app.state.home

    def answer(self, history: list[dict], model: str, system: str, knowledge: bool = False,
               agent: bool = False, attempt: int = 0) -> Iterator[list[dict]]:
        """Reply to the last user message of `history`; `attempt` > 0 (regenerate) moves a
        configured seed on, so a sampled answer can differ. With `agent`, the agent searches
        the documents itself (its knowledge_search tool), as `tllm chat --agent` does."""
        engine = self.pool.get(None if model == ASSISTANT else model)
        if agent:
            yield from self._agent(engine, history, system)
            return
        from ..engine.sampling import SamplingParams

        defaults = self.config.generation
        seed = None if defaults.seed is None else (defaults.seed + attempt) % (2**32 - 1)
        params = SamplingParams.with_defaults(defaults, seed=seed)
        messages = prompt_of(history, system, len(history))
        found = None
        if knowledge:
            messages, found = self._retrieve(messages)
        history = history + [{"role": "assistant", "content": ""}]
        yield history  # the answer's bubble appears at once, even if it stays empty
        for piece in engine.chat(messages, params):
            history[-1]["content"] += piece
            yield history
        note = sources_note(found.cited([history[-1]["content"]])) if found else None
        if note:
            yield history + [note]

    def _retrieve(self, messages: list[dict]) -> tuple[list[dict], Knowledge]:
        """The chunks for the last question in its turn, exactly as the API puts them."""
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        hits = shared_retriever(self.app).hits(question, self.config.knowledge_top_k) if question.strip() else []
        messages, sources = augment_messages(messages, hits)
        return messages, Knowledge(sources, question)

    def _agent(self, engine, history: list[dict], system: str) -> Iterator[list[dict]]:
        """The ReAct agent's answer; its steps fill a note while it works (it runs in a
        thread and hands each step over as it happens)."""
        from ..agent.session import AgentChat, agent_sampling, make_agent

        conversation = prompt_of(history, "", len(history))
        question, earlier = conversation[-1]["content"], conversation[:-1]
        agent = make_agent(self.home, engine, agent_sampling(self.config, {}), system,
                           show_steps=False)
        steps: queue.Queue = queue.Queue()
        agent.on_step = steps.put
        talk = AgentChat(agent)  # it forgets the oldest turns when the context fills
        talk.turns = earlier
        outcome: dict = {}

        def work():
            try:
                outcome["result"] = talk.ask(engine, question, None).result
            except BaseException as exc:  # shown to the user by the caller, below
                outcome["error"] = exc
            finally:
                steps.put(None)

        started = time.monotonic()
        threading.Thread(target=work, name="web-agent", daemon=True).start()
        note = {"role": "assistant", "content": "", "metadata": {"title": STEPS_TITLE, "status": "pending"}}
        history = history + [note]
        yield history
        while (step := steps.get()) is not None:
            if step.kind != "answer":  # the answer gets its own message below
                note["content"] += ("\n\n" if note["content"] else "") + step_markdown(step)
                yield history
        note["metadata"] = {"title": STEPS_TITLE, "duration": round(time.monotonic() - started, 1)}
        if "error" in outcome:
            raise outcome["error"]
        yield history + [{"role": "assistant", "content": outcome["result"].answer}]
