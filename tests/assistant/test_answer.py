"""The assistant's core: a chat that outgrows the context forgets its oldest exchanges, never
the new message; the system prompt comes first unless the conversation brings its own; a
configured seed moves on with each attempt; the agent's steps arrive before its answer."""

import json

import pytest

from tests.tiny_models import make_tiny_model
from together_llm.assistant.answer import (
    AgentStep,
    AnswerOptions,
    Assistant,
    Finished,
    TextPiece,
    answer_text,
)
from together_llm.engine.hf_engine import HFEngine
from together_llm.errors import ContextError
from together_llm.home import Home

BRIEF = {"temperature": 0, "max_tokens": 8}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    model_dir = make_tiny_model("llama", tmp_path_factory.mktemp("conv") / "m", "causal-lm")
    config = json.loads((model_dir / "config.json").read_text())
    config["max_position_embeddings"] = 2048  # rotary positions: any length works
    (model_dir / "config.json").write_text(json.dumps(config))
    return model_dir


@pytest.fixture(scope="module")
def engine(model_dir):
    return HFEngine(model_dir, context_length=200)


@pytest.fixture
def assistant(tmp_path):
    home = Home.open(tmp_path / "home")
    return Assistant(home, home.load_config())


def test_old_exchanges_are_forgotten_to_make_room(engine, assistant):
    options = AnswerOptions(system="Be brief.", sampling=BRIEF, forget_oldest=True)
    turns: list[dict] = []
    for i in range(12):
        finished = answer_text(assistant, engine, [*turns, user(f"hello {i}")], options)
        seen = assistant.with_system(finished.conversation, options)
        prompt = engine.tokenize(engine.render(seen))
        assert len(prompt) + BRIEF["max_tokens"] <= engine.context_length
        assert seen[0] == {"role": "system", "content": "Be brief."}
        turns = [*finished.conversation, {"role": "assistant", "content": finished.completion.text}]
    assert turns[-2]["content"] == "hello 11"  # the newest is kept
    assert not any(t["content"] == "hello 0" for t in turns)  # the oldest went


def test_a_message_too_long_for_the_context_is_refused(engine, assistant):
    options = AnswerOptions(sampling=BRIEF, forget_oldest=True)
    first = answer_text(assistant, engine, [user("hello")], options)
    turns = [*first.conversation, {"role": "assistant", "content": first.completion.text}]
    with pytest.raises(ContextError, match="context"):
        answer_text(assistant, engine, [*turns, user("word " * 200)], options)


def test_the_system_prompt_comes_first_unless_the_conversation_has_one(assistant):
    default = assistant.config.system_prompt
    assert assistant.with_system([user("hi")], AnswerOptions())[0]["content"] == default
    assert assistant.with_system([user("hi")], AnswerOptions(system="")) == [user("hi")]
    own = [{"role": "system", "content": "Pirate."}, user("hi")]
    assert assistant.with_system(own, AnswerOptions(system="Other.")) == own


def test_a_configured_seed_moves_on_with_each_attempt(assistant):
    assistant.config.generation.seed = 7
    assert assistant.sampling(AnswerOptions()).seed == 7
    assert assistant.sampling(AnswerOptions(attempt=2)).seed == 9
    assert assistant.sampling(AnswerOptions(sampling={"seed": 1}), index=1).seed == 2
    assert assistant.sampling(AnswerOptions(agent=True)).temperature == 0.0  # steps greedy
    assert (
        assistant.sampling(AnswerOptions(agent=True, sampling={"temperature": 0.5})).temperature
        == 0.5
    )


def test_the_agent_shows_its_steps_before_its_answer(model_dir, assistant):
    engine = HFEngine(model_dir, context_length=2048)  # room for the agent's instructions
    options = AnswerOptions(agent=True, max_steps=2, sampling=BRIEF)
    events = list(assistant.answer(engine, [user("What is 2 + 3?")], options))
    kinds = [type(e) for e in events]
    assert kinds[-2:] == [TextPiece, Finished] and AgentStep in kinds
    assert kinds.index(AgentStep) < kinds.index(TextPiece)
    finished = events[-1]
    assert finished.agent is not None and finished.completion.text == finished.agent.answer
    assert events[-2].text == finished.agent.answer


def user(text: str) -> dict:
    return {"role": "user", "content": text}
