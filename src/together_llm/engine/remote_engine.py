"""The remote engine: any OpenAI-compatible endpoint (another `tllm serve`, a hosted
provider, a llama.cpp server) behind the same generation protocol.

The remote side renders its own chat template and counts its own tokens, so this engine
streams text (server-sent events) instead of token ids, and takes usage and the finish
reason from the server. Only OpenAI's standard sampling fields are sent, since hosted
APIs refuse fields they do not know. Standard library only: no HTTP client dependency.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Iterator

from ..errors import EngineError, TllmError
from .protocol import Completion, Engine, Usage
from .sampling import SamplingParams


class RemoteEngine(Engine):
    name = "remote"
    counts_tokens = False
    concurrent = True  # the remote server schedules requests itself

    def __init__(self, url: str, model: str, api_key: str | None = None,
                 context_length: int = 2048, timeout: float = 600):
        self.url, self.model, self.api_key, self.timeout = url.rstrip("/"), model, api_key, timeout
        self.model_name = model
        self.context_length = context_length

    # --- HTTP ----------------------------------------------------------------------------
    def _open(self, path: str, body: dict | None = None):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, headers=headers,
                                         method="POST" if data else "GET")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = exc.reason
            error = EngineError if exc.code >= 500 else TllmError
            raise error(f"{self.url} answered {exc.code}: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise EngineError(f"cannot reach {self.url}: {reason}") from None

    def models(self) -> list[str]:
        with self._open("/models") as response:
            return [item["id"] for item in json.loads(response.read())["data"]]

    # --- the protocol --------------------------------------------------------------------
    def _body(self, params: SamplingParams) -> dict:
        body = {"model": self.model, "temperature": params.temperature, "top_p": params.top_p,
                "max_tokens": params.max_tokens, "stream": True,
                "stream_options": {"include_usage": True}}
        if params.stop:
            body["stop"] = params.stop
        if params.seed is not None:
            body["seed"] = params.seed
        if params.presence_penalty:
            body["presence_penalty"] = params.presence_penalty
        if params.frequency_penalty:
            body["frequency_penalty"] = params.frequency_penalty
        return body

    def chat(self, messages: list[dict], params: SamplingParams) -> "RemoteGeneration":
        return RemoteGeneration(self, "/chat/completions", {**self._body(params), "messages": messages})

    def complete(self, prompt: str, params: SamplingParams, trim: bool = True) -> "RemoteGeneration":
        return RemoteGeneration(self, "/completions", {**self._body(params), "prompt": prompt})

    def embed(self, texts: list[str]) -> list[list[float]]:
        body = {"model": self.model, "input": texts, "encoding_format": "float"}
        with self._open("/embeddings", body) as response:
            data = json.loads(response.read())["data"]
        return [item["embedding"] for item in sorted(data, key=lambda item: item["index"])]

    def render(self, messages, add_generation_prompt=True):
        raise TllmError("a remote model renders its own prompts; its template is not visible here")

    def tokenize(self, text: str) -> list[int]:
        raise TllmError("a remote model keeps its tokenizer to itself")


class RemoteGeneration:
    """A streamed remote answer with the same face as `Generation`."""

    def __init__(self, engine: RemoteEngine, path: str, body: dict):
        self.engine, self.path, self.body = engine, path, body
        self.completion: Completion | None = None

    def __iter__(self) -> Iterator[str]:
        pieces, usage, finish = [], None, "stop"
        with self.engine._open(self.path, self.body) as response:
            for raw in response:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                event = json.loads(payload)
                if "error" in event:
                    raise TllmError(f"{self.engine.url}: {event['error'].get('message')}")
                usage = event.get("usage") or usage
                for choice in event.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content") or choice.get("text") or ""
                    finish = choice.get("finish_reason") or finish
                    if text:
                        pieces.append(text)
                        yield text
        usage = usage or {}
        self.completion = Completion("".join(pieces), Usage(usage.get("prompt_tokens", 0),
                                                            usage.get("completion_tokens", 0)), finish)

    def run(self) -> Completion:
        for _ in self:
            pass
        return self.completion
