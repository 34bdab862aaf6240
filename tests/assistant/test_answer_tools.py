"""Tools through the assistant's core, on the bundled model: a forced call arrives as one
typed ToolCall whose arguments parse, and none of its markup reaches the text."""

import json

import pytest

from tests.assistant.test_tools import WEATHER
from together_llm.assistant.answer import AnswerOptions, Assistant, Finished, TextPiece
from together_llm.assistant.tools import ToolCall, Tools
from together_llm.home import Home

pytestmark = pytest.mark.slow

BRIEF = {"temperature": 0, "max_tokens": 60}


@pytest.fixture(scope="module")
def engine():
    from together_llm.engine.llamacpp.engine import LlamaCppEngine
    from together_llm.models.gguf_file import bundled_gguf

    llm = LlamaCppEngine(bundled_gguf())
    yield llm
    llm.close()


def ask(engine, tmp_path, tools: Tools):
    home = Home.open(tmp_path / "home")
    question = [{"role": "user", "content": "What is the weather in Paris today?"}]
    options = AnswerOptions(sampling=BRIEF, tools=tools)
    return list(Assistant(home, home.load_config()).answer(engine, question, options))


def test_a_forced_call_is_a_typed_call_and_not_text(engine, tmp_path):
    events = ask(engine, tmp_path, Tools(functions=(WEATHER,), named="get_weather"))
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert set(json.loads(calls[0].arguments)) == {"city"}
    text = "".join(e.text for e in events if isinstance(e, TextPiece))
    assert "<tool_call>" not in text and "get_weather" not in text
    assert isinstance(events[-1], Finished)


def test_tool_choice_none_answers_in_words(engine, tmp_path):
    events = ask(engine, tmp_path, Tools(functions=(WEATHER,), choice="none"))
    assert not any(isinstance(e, ToolCall) for e in events)
    assert "".join(e.text for e in events if isinstance(e, TextPiece)).strip()
