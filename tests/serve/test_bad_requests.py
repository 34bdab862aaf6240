"""Bad requests get the right status and an OpenAI-shaped error object, and the server
keeps answering."""

import pytest

from tests.serve.conftest import live_server, request
from together_llm.home import Home

CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]


def assert_openai_error(status, body, expected_status, fragment):
    assert status == expected_status, body
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert fragment in body["error"]["message"]


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        (b"{not json", 400, "not valid JSON"),
        ({"model": "default"}, 400, "messages"),
        ({"messages": []}, 400, "messages"),
        ({"messages": HI, "max_tokens": 0}, 400, "max_tokens"),
        ({"messages": HI, "max_tokens": 5000}, 400, "max_tokens is 5000"),
        ({"messages": HI, "temperature": 2.5}, 400, "temperature"),
        ({"messages": HI, "temperature": -1}, 400, "temperature"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, 400, "role"),
        ({"messages": HI, "model": "nope"}, 404, "model 'nope' does not exist"),
        ({"messages": HI, "logprobs": True, "top_logprobs": 21}, 400, "top_logprobs"),
    ],
)
def test_bad_chat_requests(server, body, status, fragment):
    base, _ = server
    got_status, got = request(base, "POST", CHAT, body)
    assert_openai_error(got_status, got, status, fragment)


TOOL = {"type": "function", "function": {"name": "get_time"}}
UNGRAMMATICAL = {  # a schema the grammar converter cannot follow
    "type": "function",
    "function": {
        "name": "bad",
        "parameters": {"type": "object", "properties": {"x": {"$ref": "#/nowhere"}}},
    },
}


@pytest.mark.parametrize(
    "extra, param, message",
    [
        ({"tool_choice": "required"}, "tool_choice", "tool_choice needs tools"),
        ({"tools": [TOOL, TOOL]}, "tools", "two tools have the same name"),
        (
            {"tools": [TOOL], "response_format": {"type": "json_object"}},
            "response_format",
            "response_format cannot be combined with tools",
        ),
        (
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
            "tool_choice names 'nope', which is not in tools",
        ),
        (
            {"tools": [UNGRAMMATICAL], "tool_choice": "required"},
            "tools",
            "the JSON schema of 'call-bad' cannot be turned into a grammar: ",
        ),
    ],
    ids=["choice-without-tools", "same-name", "response-format", "unknown-name", "schema"],
)
def test_tools_that_cannot_work_are_a_400_naming_the_field(server, extra, param, message):
    base, _ = server
    status, body = request(base, "POST", CHAT, {"messages": HI, "max_tokens": 3, **extra})
    assert_openai_error(status, body, 400, message)
    assert body["error"]["message"].startswith(message) and body["error"]["param"] == param
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] is None


def test_oversized_body_is_413_and_the_server_goes_on(server):
    base, _ = server
    huge = {"messages": [{"role": "user", "content": "x" * 3_000_000}]}
    status, body = request(base, "POST", CHAT, huge)
    assert_openai_error(status, body, 413, "larger than")
    status, body = request(base, "POST", CHAT, {"messages": HI, "max_tokens": 3})
    assert status == 200 and body["choices"][0]["finish_reason"] in ("stop", "length")


def test_unknown_route_is_an_openai_404(server):
    base, _ = server
    status, body = request(base, "GET", "/v1/nothing")
    assert_openai_error(status, body, 404, "Not Found")


def test_api_key_is_required_when_set(tmp_path):
    home = Home.open(tmp_path / "home")
    with live_server(home, "--api-key", "s3cret") as base:
        status, body = request(base, "GET", "/v1/models")
        assert_openai_error(status, body, 401, "missing API key")
        status, body = request(base, "GET", "/v1/models", headers={"Authorization": "Bearer nope"})
        assert_openai_error(status, body, 401, "incorrect API key")
        status, body = request(
            base, "GET", "/v1/models", headers={"Authorization": "Bearer s3cret"}
        )
        assert status == 200 and [m["id"] for m in body["data"]][:2] == ["assistant", "default"]
        assert request(base, "GET", "/health")[0] == 200  # health needs no key
        assert request(base, "GET", "/config")[0] == 401  # nor does the web chat open without it
        assert request(base, "GET", "/gradio_api/info")[0] == 401


def test_listening_beyond_loopback_without_a_key_is_refused(home):
    from tests.conftest import run_tllm

    result = run_tllm("serve", "--host", "0.0.0.0", "--port", "1", home=home)
    assert result.returncode == 1
    assert "refusing to listen on 0.0.0.0 without an API key" in result.stderr


def test_empty_prompt_is_refused_and_the_server_goes_on(server):
    base, _ = server
    for body in ({"prompt": ""}, {"prompt": "", "echo": True, "logprobs": 1}):
        status, reply = request(base, "POST", "/v1/completions", body)
        assert_openai_error(status, reply, 400, "empty")
    status, reply = request(
        base, "POST", "/v1/completions", {"prompt": "Once upon", "max_tokens": 3}
    )
    assert status == 200 and reply["usage"]["completion_tokens"] >= 1


def test_token_ids_outside_the_vocabulary_are_refused(server):
    base, _ = server
    status, reply = request(base, "POST", "/v1/completions", {"prompt": [1, 2, 10**9]})
    assert_openai_error(status, reply, 400, "token ids must be between 0 and")
