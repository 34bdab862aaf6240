"""Knowledge through `/v1/chat/completions`: the official `openai` client against a live
`tllm serve --knowledge` on the bundled model, whole and streamed, and switched off per request."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai import OpenAI

from together_llm.home import Home

from ..serve.conftest import live_server
from .corpus import write_corpus

HONEY = [{"role": "user", "content": "Under what brand is the co-op's honey sold?"}]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("knowledge-serve")
    home = Home.open(root / "home")
    from together_llm.knowledge.index import KnowledgeIndex
    from together_llm.knowledge.ingest import ingest

    with KnowledgeIndex.open(home) as index:
        ingest(index, [write_corpus(root / "corpus")])
    with live_server(home, "--no-ui", "--knowledge", log_path=home.path / "serve.log") as base:
        yield OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.mark.slow
def test_answer_carries_its_cited_sources_whole_and_streamed(client):
    whole = client.chat.completions.create(
        model="default", messages=HONEY, temperature=0, max_tokens=48
    )
    answer = whole.choices[0].message.content
    assert "Meadowgold" in answer
    sources = whole.model_extra["sources"]
    assert [Path(s["source"]).name for s in sources] == ["beekeeping.txt"]
    first = sources[0]
    assert first["id"] >= 1 and "Meadowgold" in first["chunk"] and first["score"] > 0
    assert first["cited_by"] in ("marker", "quote") and first["title"]

    chunks = list(
        client.chat.completions.create(
            model="default", messages=HONEY, temperature=0, max_tokens=48, stream=True
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Meadowgold" in streamed  # (the batching engine's text may differ after the first words)
    assert chunks[-1].choices == []
    assert [Path(s["source"]).name for s in chunks[-1].model_extra["sources"]] == ["beekeeping.txt"]
    assert chunks[-1].id == chunks[0].id


@pytest.mark.slow
def test_a_request_can_switch_knowledge_off(client):
    plain = client.chat.completions.create(
        model="default",
        messages=HONEY,
        temperature=0,
        max_tokens=48,
        extra_body={"knowledge": False},
    )
    assert "sources" not in (plain.model_extra or {})
    assert "Meadowgold" not in plain.choices[0].message.content
