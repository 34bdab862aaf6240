"""Tools in words and back: the offered tools reach the model in its system message, earlier
calls and their results read as the model would write them, an answer that is a call to an
offered tool becomes a `ToolCall`, and anything else stays the answer's text."""

import json

import pytest

from together_llm.assistant.tools import (
    CallScanner,
    ToolCall,
    ToolError,
    Tools,
    parse_calls,
    render_tools,
)
from together_llm.engine.protocol import Engine

WEATHER = {
    "name": "get_weather",
    "description": "The weather forecast for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
TIME = {"name": "get_time", "parameters": {"type": "object", "properties": {}}}
TOOLS = Tools((WEATHER, TIME))
ASK = [{"role": "user", "content": "Weather in Paris?"}]
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


class NoGrammar(Engine):
    """An engine that cannot hold its answer to a grammar (transformers, a remote one)."""

    name, model_name = "transformers", "tiny"


class WithGrammar(NoGrammar):
    name, supports_grammar = "llamacpp", True


def test_offered_tools_join_the_system_message():
    messages = [{"role": "system", "content": "Be brief."}, *ASK]
    system, user = render_tools(messages, TOOLS)
    assert system["role"] == "system" and system["content"].startswith("Be brief.\n\n")
    block = system["content"].split("<tools>\n")[1].split("\n</tools>")[0]
    assert [json.loads(line) for line in block.splitlines()] == [WEATHER, TIME]
    assert "<tool_call>" in system["content"]  # how to call one
    assert user == ASK[0]


def test_without_a_system_message_the_tools_make_one():
    rendered = render_tools(ASK, TOOLS)
    assert rendered[0]["role"] == "system" and "get_weather" in rendered[0]["content"]
    assert rendered[1:] == ASK


def test_a_named_choice_offers_only_that_tool_and_none_offers_nothing():
    named = render_tools(ASK, Tools((WEATHER, TIME), named="get_time"))
    assert "get_time" in named[0]["content"] and "get_weather" not in named[0]["content"]
    assert render_tools(ASK, Tools((WEATHER, TIME), choice="none")) == ASK


def test_earlier_calls_and_their_results_read_as_the_model_writes_them():
    history = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [ToolCall("c1", "get_weather", '{"city":"Paris"}').as_dict()],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c1", "content": "24 C"},
    ]
    rendered = render_tools(history)
    assert rendered[1] == {"role": "assistant", "content": CALL}
    # both results in one user turn, each named after the tool that gave it
    assert rendered[2]["role"] == "user" and len(rendered) == 3
    results = rendered[2]["content"].split("\n</tool_response>\n<tool_response>\n")
    assert json.loads(results[0].removeprefix("<tool_response>\n")) == {
        "name": "get_weather",
        "content": "sunny",
    }
    assert json.loads(results[1].removesuffix("\n</tool_response>"))["content"] == "24 C"


def test_an_answer_that_calls_a_tool_becomes_a_tool_call():
    content, calls = parse_calls(f"  {CALL}", TOOLS)
    assert content is None
    (call,) = calls
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert call.id.startswith("call_") and call.id != parse_calls(CALL, TOOLS)[1][0].id
    assert call.as_dict() == {
        "id": call.id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": call.arguments},
    }


@pytest.mark.parametrize(
    "answer",
    [
        "It is sunny in Paris.",
        "<b>sunny</b>",
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": Paris}}\n</tool_call>',
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par',  # cut off
        '<tool_call>\n{"name": "book_flight", "arguments": {}}\n</tool_call>',  # not offered
    ],
    ids=["text", "markup", "arguments-not-json", "unfinished", "unknown-tool"],
)
def test_anything_but_a_whole_call_to_an_offered_tool_stays_text(answer):
    assert parse_calls(answer, TOOLS) == (answer, [])


def test_with_tool_choice_none_a_call_stays_text():
    assert parse_calls(CALL, Tools((WEATHER,), choice="none")) == (CALL, [])


def test_a_streamed_call_arrives_as_its_name_then_its_arguments():
    scanner = CallScanner(TOOLS.names())
    events = [event for char in CALL for event in scanner.feed(char)] + scanner.finish()
    assert events[0] == ("call", "get_weather")
    assert {kind for kind, _ in events[1:]} == {"arguments"}
    assert json.loads("".join(piece for _, piece in events[1:])) == {"city": "Paris"}
    assert scanner.called


def test_streamed_text_is_held_back_only_while_it_could_open_a_call():
    scanner = CallScanner(TOOLS.names())
    assert scanner.feed("<to") == []  # could still be "<tool_call>"
    assert scanner.feed("ast>") == [("text", "<toast>")]
    assert scanner.feed(" more") == [("text", " more")] and not scanner.called


@pytest.mark.parametrize(
    "tools, field, message",
    [
        (Tools(choice="required"), "tool_choice", "tool_choice needs tools"),
        (Tools((WEATHER, WEATHER)), "tools", "two tools have the same name"),
    ],
)
def test_tools_that_cannot_work_are_refused(tools, field, message):
    with pytest.raises(ToolError) as error:
        tools.validate()
    assert str(error.value) == message and error.value.field == field


def test_a_choice_naming_a_tool_not_offered_is_refused():
    with pytest.raises(ToolError, match="tool_choice names 'nope', which is not in tools"):
        Tools((WEATHER,), named="nope").offered()


def test_a_forced_call_needs_an_engine_with_grammars():
    assert TOOLS.grammar(NoGrammar()) is None  # auto: the answer is parsed instead
    with pytest.raises(ToolError) as error:
        Tools((WEATHER,), choice="required").grammar(NoGrammar())
    assert error.value.field == "tool_choice"
    assert str(error.value) == (
        "tool_choice required needs the llama.cpp engine (grammar-constrained calls); "
        "tiny runs on transformers: use tool_choice auto"
    )


def test_a_grammar_holds_the_answer_to_the_offered_tools():
    forced = Tools((WEATHER, TIME), named="get_weather").grammar(WithGrammar())
    assert forced is not None and "get_weather" in forced and "get_time" not in forced
    assert Tools((WEATHER,), choice="none").grammar(WithGrammar()) is None


def test_a_schema_the_grammar_cannot_hold_names_the_tools():
    bad = {"name": "bad", "parameters": {"type": "object", "properties": {"x": {"$ref": "#/no"}}}}
    with pytest.raises(ToolError, match="'call-bad' cannot be turned into a grammar") as error:
        Tools((bad,)).grammar(WithGrammar())
    assert error.value.field == "tools"
