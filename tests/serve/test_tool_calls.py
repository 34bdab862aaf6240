"""OpenAI tool calling through the official client against a live `tllm serve` on the
bundled model: grammar-constrained calls whose arguments fit the tool's schema."""

import json

import pytest
from openai import OpenAI

pytestmark = pytest.mark.slow

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 40},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "days", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The current time.",
        "parameters": {"type": "object", "properties": {}},
    },
}
ASK = [{"role": "user", "content": "What will the weather be in Paris for the next 3 days?"}]


@pytest.fixture(scope="module")
def client(server):
    base, _ = server
    return OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=120)


def fits_weather(arguments: dict) -> bool:
    """The get_weather schema, checked by hand (jsonschema is not installed)."""
    return (
        set(arguments) == {"city", "days", "unit"}
        and isinstance(arguments["city"], str)
        and len(arguments["city"]) <= 40
        and type(arguments["days"]) is int
        and arguments["unit"] in ("celsius", "fahrenheit")
    )


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_forced_call_fits_the_schema(client, choice):
    answer = client.chat.completions.create(
        model="default",
        messages=ASK,
        tools=[WEATHER, TIME],
        tool_choice=choice,
        temperature=0,
        max_tokens=80,
    )
    choice0 = answer.choices[0]
    assert choice0.finish_reason == "tool_calls"
    (call,) = choice0.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    if isinstance(choice, dict):
        assert call.function.name == "get_weather"
    if call.function.name == "get_weather":
        assert fits_weather(json.loads(call.function.arguments))
    else:
        assert json.loads(call.function.arguments) == {}


def test_streamed_call_equals_the_whole_one(client):
    ask = dict(
        model="default",
        messages=ASK,
        tools=[WEATHER],
        tool_choice="required",
        temperature=0,
        max_tokens=80,
    )
    whole = client.chat.completions.create(**ask).choices[0].message.tool_calls[0]
    chunks = list(client.chat.completions.create(**ask, stream=True))
    parts = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    assert parts[0].id and parts[0].function.name == "get_weather" and parts[0].index == 0
    assert len(parts) > 2  # the arguments arrive in pieces, as OpenAI streams them
    assert all(p.id is None and p.function.name is None for p in parts[1:])
    arguments = "".join(p.function.arguments or "" for p in parts)
    assert arguments == whole.function.arguments and fits_weather(json.loads(arguments))
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_auto_gives_a_call_or_text(client):
    answer = client.chat.completions.create(
        model="default", messages=ASK, tools=[WEATHER], temperature=0, max_tokens=60
    )
    message = answer.choices[0].message
    if message.tool_calls:
        assert answer.choices[0].finish_reason == "tool_calls"
        assert fits_weather(json.loads(message.tool_calls[0].function.arguments))
    else:
        assert message.content and "<tool_call>" not in message.content


def test_tool_result_round_trip_answers_in_text(client):
    first = client.chat.completions.create(
        model="default",
        messages=ASK,
        tools=[WEATHER],
        tool_choice="required",
        temperature=0,
        max_tokens=80,
    )
    call = first.choices[0].message.tool_calls[0]
    history = ASK + [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {
            "role": "tool",
            "tool_call_id": call.id,
            "content": json.dumps({"forecast": "sunny", "high_celsius": 24}),
        },
    ]
    answer = client.chat.completions.create(
        model="default",
        messages=history,
        tools=[WEATHER],
        tool_choice="none",
        temperature=0,
        max_tokens=40,
    )
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert answer.choices[0].message.tool_calls is None
    assert answer.choices[0].message.content.strip()


def test_tool_choice_naming_an_unknown_tool_is_a_400(client):
    from openai import BadRequestError

    with pytest.raises(BadRequestError) as error:
        client.chat.completions.create(
            model="default",
            messages=ASK,
            tools=[WEATHER],
            max_tokens=5,
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )
    assert "nope" in str(error.value)
