"""Log-probabilities in OpenAI's shapes: what a request asks for, each generated token as
chat `logprobs.content` or as a text completion's parallel lists, and the echoed prompt's
own tokens (`echo` with `logprobs`)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from ..engine.protocol import Engine, TokenLogprob
from .errors import APIError
from .schemas import ChatCompletionRequest


def logprobs_asked(body) -> int | None:
    """How many alternatives per token a request wants logprobs for (None: no logprobs)."""
    if isinstance(body, ChatCompletionRequest):
        return (body.top_logprobs or 0) if body.logprobs else None
    return body.logprobs


def chat_logprob(entry) -> dict:
    """One token of chat `logprobs.content`, as OpenAI shapes it."""

    def as_text(raw: bytes) -> str:
        return raw.decode("utf-8", errors="replace")

    return {
        "token": as_text(entry.token),
        "logprob": entry.logprob,
        "bytes": list(entry.token),
        "top_logprobs": [
            {"token": as_text(t), "logprob": lp, "bytes": list(t)} for t, lp in entry.top
        ],
    }


def text_logprobs(entries: list, offset: int = 0) -> dict:
    """Text-completion `logprobs`: parallel lists, `text_offset` counting from `offset`."""
    texts = [e.token.decode("utf-8", errors="replace") for e in entries]
    offsets = []
    for text in texts:
        offsets.append(offset)
        offset += len(text)
    return {
        "tokens": texts,
        "token_logprobs": [e.logprob for e in entries],
        "top_logprobs": [
            None
            if e.logprob is None
            else {t.decode("utf-8", errors="replace"): lp for t, lp in e.top}
            for e in entries
        ],
        "text_offset": offsets,
    }


async def echo_logprobs(engine: Engine, prompt: str | list[int], body) -> list[TokenLogprob]:
    """The prompt's own tokens with their logprobs (the first has none), for `echo`."""
    if not hasattr(engine, "prompt_logprobs"):
        raise APIError(
            400,
            f"echo with logprobs needs the batching llama.cpp engine; "
            f"{engine.model_name} runs on {engine.name}",
            param="logprobs",
        )
    ids = prompt if isinstance(prompt, list) else await run_in_threadpool(engine.tokenize, prompt)
    entries = await run_in_threadpool(engine.prompt_logprobs, ids, body.logprobs)
    return [TokenLogprob(engine.token_bytes(ids[0]), None, [])] + entries[1:]
