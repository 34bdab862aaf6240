"""A chat that outgrows the context forgets its oldest exchanges, never the new message."""

import json

import pytest

from together_llm.engine.conversation import Conversation
from together_llm.engine.hf_engine import HFEngine
from together_llm.engine.sampling import SamplingParams
from together_llm.errors import ContextError
from tests.tiny_models import make_tiny_model


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    model_dir = make_tiny_model("llama", tmp_path_factory.mktemp("conv") / "m", "causal-lm")
    config = json.loads((model_dir / "config.json").read_text())
    config["max_position_embeddings"] = 1024  # rotary positions: any length works
    (model_dir / "config.json").write_text(json.dumps(config))
    return HFEngine(model_dir, context_length=200)


def test_old_exchanges_are_forgotten_to_make_room(engine):
    talk = Conversation("Be brief.")
    params = SamplingParams(temperature=0, max_tokens=8)
    for i in range(12):
        generation = talk.ask(engine, f"hello {i}", params)
        assert len(generation.prompt_ids) + params.max_tokens <= engine.context_length
        talk.record(generation.run().text)
    assert talk.turns[-2]["content"] == "hello 11"  # the newest is kept
    assert not any(t["content"] == "hello 0" for t in talk.turns)  # the oldest went
    assert talk.messages()[0] == {"role": "system", "content": "Be brief."}


def test_a_message_too_long_for_the_context_is_refused_and_history_kept(engine):
    talk = Conversation()
    params = SamplingParams(temperature=0, max_tokens=8)
    talk.record(talk.ask(engine, "hello", params).run().text)
    before = list(talk.turns)
    with pytest.raises(ContextError, match="context"):
        talk.ask(engine, "word " * 200, params)
    assert talk.turns == before
