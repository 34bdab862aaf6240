"""The web chat's "Answer from my documents" and "Agent with tools", on the bundled model,
through the functions its Chat tab calls (no browser): what the page shows as it streams,
and what goes back into prompts and ratings."""

from __future__ import annotations

import copy

import pytest

from together_llm.home import Home
from together_llm.serve.app import create_app
from together_llm.serve.settings import ServeSettings
from together_llm.serve.web_assist import (
    ASSISTANT,
    SOURCES_TITLE,
    STEPS_TITLE,
    ChatAnswers,
    is_note,
    knowledge_box,
    prompt_of,
)

from ..knowledge.corpus import write_corpus

HONEY = "Under what brand is the co-op's honey sold?"


def corpus_home(root) -> Home:
    """A home whose knowledge index holds the Larkspur corpus; short greedy answers."""
    from together_llm.knowledge.index import KnowledgeIndex
    from together_llm.knowledge.ingest import ingest

    home = Home.open(root / "home")
    config = home.load_config()
    config.generation.temperature, config.generation.max_tokens = 0.0, 60
    home.save_config(config)
    with KnowledgeIndex.open(home) as index:
        ingest(index, [write_corpus(root / "corpus")])
    return home


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    home = corpus_home(tmp_path_factory.mktemp("web-assist"))
    app = create_app(ServeSettings(home=str(home.path), ui=False, slots=1))
    yield app
    app.state.engines.close()


def system(app) -> str:
    return app.state.config.system_prompt  # what the page's system box starts with


def shown(replies) -> list[list[dict]]:
    """Every state of the conversation the page was sent (copied: the reply grows in place)."""
    return [copy.deepcopy(history) for history in replies]


def test_the_knowledge_box_follows_the_server_and_needs_documents(app, tmp_path):
    box = knowledge_box(app)
    assert box["interactive"] and box["value"] is False  # assistant.yaml's knowledge is off
    assert "30 documents" in box["info"]
    on = create_app(ServeSettings(home=str(app.state.home.path), ui=False, knowledge=True))
    assert knowledge_box(on)["value"] is True  # `tllm serve --knowledge`

    empty = create_app(ServeSettings(home=str(tmp_path / "empty"), ui=False, knowledge=True))
    box = knowledge_box(empty)
    assert box["value"] is False and box["interactive"] is False
    assert "tllm knowledge add PATH" in box["info"]


@pytest.mark.slow
def test_answer_from_my_documents_lists_the_cited_source(app):
    asked = [{"role": "user", "content": HONEY}]
    states = shown(ChatAnswers(app).answer(asked, ASSISTANT, system(app), knowledge=True))
    assert len({len(s[-1]["content"]) for s in states if not is_note(s[-1])}) > 2  # it streamed
    question, answer, note = states[-1]
    assert question == asked[0] and "Meadowgold" in answer["content"]
    assert note["metadata"] == {"title": SOURCES_TITLE}
    assert "beekeeping.txt" in note["content"] and note["content"].startswith("- [")
    assert "founding.md" not in note["content"]  # only what the answer cites
    # what a rating or the next turn sees: the plain question and answer, no sources
    assert prompt_of(states[-1], "", 3) == [
        asked[0],
        {"role": "assistant", "content": answer["content"]},
    ]

    plain = shown(ChatAnswers(app).answer(asked, ASSISTANT, system(app), knowledge=False))[-1]
    assert len(plain) == 2 and "Meadowgold" not in plain[-1]["content"]


@pytest.mark.slow
def test_the_agent_shows_its_calculator_step_then_answers(app):
    asked = [{"role": "user", "content": "What is 12345 * 678?"}]
    states = shown(ChatAnswers(app).answer(asked, ASSISTANT, system(app), agent=True))
    question, steps, answer = states[-1]
    assert steps["metadata"]["title"] == STEPS_TITLE and "status" not in steps["metadata"]
    assert "**Action:** calculator" in steps["content"]
    assert "**Observation:** 8369910" in steps["content"]
    assert "8369910" in answer["content"] and not is_note(answer)
    # the steps appeared while the agent worked, before its answer
    working = [s for s in states if s[-1] is not None and is_note(s[-1])]
    assert working[0][-1]["metadata"]["status"] == "pending"
    assert any("Observation" in s[-1]["content"] and len(s) == 2 for s in working)
    assert prompt_of(states[-1], "", 3) == [
        asked[0],
        {"role": "assistant", "content": answer["content"]},
    ]
