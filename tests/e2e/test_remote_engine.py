"""A home uses another `tllm serve` as its model: the remote engine, end to end."""

import json
import os

import pytest

from tests.conftest import run_tllm
from tests.serve.conftest import live_server
from together_llm.home import Home


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    home = Home.open(tmp_path_factory.mktemp("peer") / "home")
    with live_server(home, "--api-key", "peer-secret") as base:
        yield f"{base}/v1"


def test_ask_chat_and_serve_through_a_remote_model(peer, tmp_path):
    home = Home.open(tmp_path / "home")
    os.environ["PEER_KEY"] = "peer-secret"
    try:
        added = run_tllm("models", "add", "peer", peer, "--api-key-env", "PEER_KEY", home=home)
        assert added.returncode == 0, added.stderr
        info = json.loads(run_tllm("models", "info", "peer", "--json", home=home).stdout)
        # the first model the peer lists: a Together-LLM server's assistant as configured
        assert info["kind"] == "remote" and info["model"] == "assistant"

        answer = run_tllm(
            "ask",
            "--model",
            "peer",
            "--temperature",
            "0",
            "What is the capital of France?",
            home=home,
        )
        assert answer.returncode == 0, answer.stderr
        assert "Paris" in answer.stdout

        result = run_tllm("ask", "--model", "peer", "--json", "--max-tokens", "3", "Hi", home=home)
        completion = json.loads(result.stdout)
        assert (
            completion["finish_reason"] == "length"
            and completion["usage"]["completion_tokens"] == 3
        )

        chat = run_tllm(
            "chat",
            "--model",
            "peer",
            "--json",
            "--temperature",
            "0",
            input="What is the capital of France?\n",
            home=home,
        )
        assert "Paris" in json.loads(chat.stdout.splitlines()[0])["text"]

        from openai import OpenAI

        assert run_tllm("config", "set", "model", "peer", home=home).returncode == 0
        with live_server(home) as base:  # this home serves, answering through the peer
            client = OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0)
            reply = client.chat.completions.create(
                model="peer",
                temperature=0,
                messages=[{"role": "user", "content": "What is the capital of France?"}],
            )
            assert "Paris" in reply.choices[0].message.content
    finally:
        del os.environ["PEER_KEY"]


def test_a_remote_without_its_key_or_unreachable_is_reported(peer, tmp_path):
    home = Home.open(tmp_path / "home")
    refused = run_tllm("models", "add", "peer", peer, home=home)
    assert refused.returncode == 1 and "answered 401" in refused.stderr
    missing = run_tllm(
        "models", "add", "peer", peer, "--api-key-env", "NOT_SET_ANYWHERE", home=home
    )
    assert missing.returncode == 1 and "$NOT_SET_ANYWHERE, which is not set" in missing.stderr
    down = run_tllm("models", "add", "gone", "http://127.0.0.1:9/v1", home=home)
    assert down.returncode == 1 and "cannot reach http://127.0.0.1:9/v1" in down.stderr
