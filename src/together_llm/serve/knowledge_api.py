"""Knowledge in `/v1/chat/completions`: the chunks retrieved for the last user message go
into that message (the assistant's grounding: assistant/grounding.py), and the response carries the sources the answer
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

from ..assistant.grounding import Knowledge
from ..engine.protocol import Generation


def attach(response: dict, knowledge: Knowledge | None) -> dict:
    """A whole chat completion with its `sources` (when knowledge was on)."""
    if knowledge is not None:
        answers = [c["message"]["content"] or "" for c in response["choices"]]
        response["sources"] = [s.to_dict() for s in knowledge.cited(*answers)]
    return response


def sources_chunk(head: dict, knowledge: Knowledge, generations: list[Generation]) -> dict:
    """The last streamed chunk when knowledge is on: no choices, the cited `sources`."""
    answers = [g.completion.text for g in generations if g.completion is not None]
    cited = [s.to_dict() for s in knowledge.cited(*answers)]
    return {**head, "choices": [], "sources": cited}
