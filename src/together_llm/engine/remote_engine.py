"""The remote engine: any OpenAI-compatible endpoint (another `tllm serve`, a hosted
provider, a llama.cpp server) behind the same generation protocol.

The remote side renders its own chat template and counts its own tokens, so this engine
streams text (server-sent events) instead of token ids, and takes usage and the finish
reason from the server. Only OpenAI's standard sampling fields are sent, since hosted
APIs refuse fields they do not know. The HTTP side is
models/remote_endpoint.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from ..errors import TllmError
from ..models.remote_endpoint import Endpoint
from ..sampling import SamplingParams
from .protocol import Completion, Engine, Generation, Usage


class RemoteEngine(Engine):
    name = "remote"
    counts_tokens = False
    concurrent = True  # the remote server schedules requests itself

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        context_length: int = 2048,
        timeout: float = 600,
    ):
        self.endpoint = Endpoint(url, api_key, timeout)
        self.url, self.model = self.endpoint.url, model
        self.model_name = model
        self.context_length = context_length

    def models(self) -> list[str]:
        return self.endpoint.models()

    # --- the protocol --------------------------------------------------------------------
    def _body(self, params: SamplingParams) -> dict:
        body = {
            "model": self.model,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.stop:
            body["stop"] = params.stop
        if params.seed is not None:
            body["seed"] = params.seed
        if params.presence_penalty:
            body["presence_penalty"] = params.presence_penalty
        if params.frequency_penalty:
            body["frequency_penalty"] = params.frequency_penalty
        return body

    def chat(self, messages: list[dict], params: SamplingParams) -> RemoteGeneration:
        return RemoteGeneration(
            self, "/chat/completions", {**self._body(params), "messages": messages}, params
        )

    def complete(self, prompt: str, params: SamplingParams, trim: bool = True) -> RemoteGeneration:
        return RemoteGeneration(
            self, "/completions", {**self._body(params), "prompt": prompt}, params
        )

    def embed(self, texts: list[str]) -> list[list[float]]:
        body = {"model": self.model, "input": texts, "encoding_format": "float"}
        with self.endpoint.open("/embeddings", body) as response:
            data = json.loads(response.read())["data"]
        return [item["embedding"] for item in sorted(data, key=lambda item: item["index"])]

    def render(self, messages, add_generation_prompt=True):
        raise TllmError("a remote model renders its own prompts; its template is not visible here")

    def tokenize(self, text: str) -> list[int]:
        raise TllmError("a remote model keeps its tokenizer to itself")


class RemoteGeneration(Generation):
    """A streamed remote answer: a `Generation` whose text comes from the endpoint, which
    tokenizes the prompt itself (no prompt ids here, no logprobs)."""

    def __init__(self, engine: RemoteEngine, path: str, body: dict, params: SamplingParams):
        super().__init__(engine, [], params, params.max_tokens)
        self.remote, self.path, self.body = engine, path, body

    def __iter__(self) -> Iterator[str]:
        pieces, usage, finish = [], None, "stop"
        with self.remote.endpoint.open(self.path, self.body) as response:
            for raw in response:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                event = json.loads(payload)
                if "error" in event:
                    raise TllmError(f"{self.remote.url}: {event['error'].get('message')}")
                usage = event.get("usage") or usage
                for choice in event.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content") or choice.get("text") or ""
                    finish = choice.get("finish_reason") or finish
                    if text:
                        pieces.append(text)
                        yield text
        usage = usage or {}
        self.completion = Completion(
            "".join(pieces),
            Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
            finish,
        )
