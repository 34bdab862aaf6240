"""Knowledge in `/v1/chat/completions`: the chunks retrieved for the last user message go
into that message (knowledge/prompt.py), and the response carries the sources the answer
cites in an extra top-level field, `sources`, also sent in a last streamed chunk whose
`choices` is empty (as OpenAI's usage chunk is), just before `data: [DONE]`:

    "sources": [{"id": 1, "source": "/home/me/notes/bees.md", "title": "Beekeeping",
                 "page": null, "chunk": "...", "score": 3.21, "document_id": 4,
                 "chunk_id": 17, "cited_by": "marker" | "quote"}]

`id` is the number the answer cites as [1]; `cited_by` says whether the model wrote that
marker or quoted the source's words without one. Knowledge is on when the request says
`"knowledge": true`, else as `tllm serve --knowledge/--no-knowledge` says, else as
assistant.yaml's `knowledge`. Off, the response has no `sources` field.
"""

from __future__ import annotations

import json
import threading

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ..knowledge.prompt import augment_messages, cited_sources
from .streaming import sse

_opening = threading.Lock()


def shared_retriever(app):
    """The app's one retriever, opened on first use (most servers never need it)."""
    with _opening:
        if getattr(app.state, "retriever", None) is None:
            from ..knowledge.retrieve import Retriever

            config = app.state.config
            app.state.retriever = Retriever(app.state.home, "auto", config.knowledge_embed_model or None)
        return app.state.retriever


def is_on(request: Request, body) -> bool:
    asked = getattr(body, "knowledge", None)
    if asked is not None:
        return asked
    served = getattr(request.app.state.settings, "knowledge", None)
    return request.app.state.config.knowledge if served is None else served


class Knowledge:
    """What one request retrieved: the numbered sources and the question they answer."""

    def __init__(self, sources: list, question: str):
        self.sources, self.question = sources, question

    def cited(self, answers: list[str]) -> list[dict]:
        text = "\n".join(answers)
        return [s.to_dict() for s in cited_sources(text, self.sources, self.question)]


async def retrieve(request: Request, body, messages: list[dict]) -> tuple[list[dict], Knowledge | None]:
    """`messages` with retrieved chunks in the last user turn when knowledge is on."""
    if not is_on(request, body):
        return messages, None
    question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    config = request.app.state.config
    retriever = await run_in_threadpool(shared_retriever, request.app)
    hits = await run_in_threadpool(retriever.hits, question, config.knowledge_top_k) if question.strip() else []
    messages, sources = augment_messages(messages, hits)
    return messages, Knowledge(sources, question)


def attach(response: dict, knowledge: Knowledge | None) -> dict:
    """A whole chat completion with its `sources` (when knowledge was on)."""
    if knowledge is not None:
        response["sources"] = knowledge.cited([c["message"]["content"] or "" for c in response["choices"]])
    return response


def stream_with_sources(response, generations: list, knowledge: Knowledge | None):
    """The streamed response with one more chunk before `[DONE]` carrying `sources`."""
    if knowledge is None:
        return response
    inner = response.body_iterator
    done = sse("[DONE]")

    async def events():
        head = None
        async for event in inner:
            text = event if isinstance(event, str) else event.decode()
            if text == done:
                answers = [g.completion.text for g in generations if g.completion is not None]
                yield sse({**(head or {}), "object": "chat.completion.chunk", "choices": [],
                           "sources": knowledge.cited(answers)})
            elif head is None and text.startswith("data: {"):
                first = json.loads(text[6:])
                head = {k: first[k] for k in ("id", "created", "model") if k in first}
            yield event

    response.body_iterator = events()
    return response
