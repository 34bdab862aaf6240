"""The OpenAI-compatible routes under /v1: models, chat completions, completions.

A route turns the request into messages or a prompt and `SamplingParams`, asks the
engine pool for the engine of `model`, and either waits for the whole answer or streams
it as OpenAI's chunk objects over server-sent events, ending with `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..assistant.answer import AnswerOptions
from ..assistant.grounding import Knowledge
from ..engine.protocol import Engine, Generation, TokenLogprob
from ..sampling import SamplingParams
from . import tool_calls
from .adapters_api import engine_for
from .errors import APIError
from .feedback import FeedbackRequest, store_feedback
from .knowledge_api import attach, sources_chunk
from .limits import require_key
from .logprobs import chat_logprob, echo_logprobs, logprobs_asked, text_logprobs
from .metrics import Timer
from .schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from .streaming import event_stream, pieces, sse, usage_of

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])


@router.get("/models")
async def models(request: Request):
    pool = request.app.state.engines
    created = int(time.time())

    def entries():  # `engine` (an extension): which engine answers it, and why
        return [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "together-llm",
                "engine": pool.engine_of(name),
            }
            for name in pool.names()
        ]

    return {"object": "list", "data": await run_in_threadpool(entries)}


def _params(request: Request, engine: Engine, body, prompt_len: int, index: int) -> SamplingParams:
    """Sampling parameters: the request's, else assistant.yaml's generation defaults; a
    seeded request's choice `index` gets its own seed, so the n choices differ."""
    defaults = request.app.state.config.generation
    room = engine.context_length - prompt_len
    asked = getattr(body, "max_completion_tokens", None) or body.max_tokens
    if asked is not None and asked > room and engine.counts_tokens:
        raise APIError(
            400,
            f"max_tokens is {asked}, but the prompt takes {prompt_len} of the "
            f"{engine.context_length}-token context, leaving {room}",
            param="max_tokens",
            code="context_length_exceeded",
        )
    given = {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "top_k": body.top_k,
        "max_tokens": min(asked or defaults.max_tokens, room) if room > 0 else 1,
        "repetition_penalty": body.repetition_penalty or 1.0,  # OpenAI clients expect none
        "presence_penalty": body.presence_penalty,
        "frequency_penalty": body.frequency_penalty,
        "stop": list(body.stop or []),
        "seed": body.seed,
        "grammar": tool_calls.grammar(engine, body)
        or _grammar(engine, getattr(body, "response_format", None)),
        "logprobs": logprobs_asked(body),
    }
    return request.app.state.assistant.sampling(AnswerOptions(sampling=given), index)


def _grammar(engine: Engine, response_format) -> str | None:
    """The GBNF grammar that makes the answer valid JSON (of a schema, if one is given)."""
    if response_format is None or response_format.type == "text":
        return None
    if not engine.supports_grammar:
        raise APIError(
            400,
            f"response_format {response_format.type} needs the llama.cpp engine; "
            f"{engine.model_name} runs on {engine.name}",
            param="response_format",
        )
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if response_format.type == "json_object":
        return JSON_GBNF
    spec = response_format.json_schema or {}
    schema = spec.get("schema", spec)  # OpenAI nests it: {"name", "schema", "strict"}
    if not isinstance(schema, dict):
        raise APIError(
            400, "response_format.json_schema.schema must be an object", param="response_format"
        )
    try:
        return json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises assorted errors on schemas it cannot do
        raise APIError(400, f"unsupported JSON schema: {exc}", param="response_format") from None


async def _start(
    request: Request,
    body,
    prompt: str | list[int] | None = None,
    messages: list[dict] | None = None,
) -> tuple[Engine, list[Generation]]:
    """Open the engine, render and tokenize, and create the `n` generations. A `prompt`
    may come as token ids (evaluation tools send them), used as they are."""
    settings = request.app.state.settings
    if body.n > settings.max_n:
        raise APIError(400, f"n is {body.n}; at most {settings.max_n}", param="n")
    engine = await engine_for(request, body)
    if logprobs_asked(body) is not None and not engine.supports_logprobs:
        raise APIError(
            400,
            f"logprobs need the llama.cpp engine served with batching; "
            f"{engine.model_name} runs on {engine.name}",
            param="logprobs",
        )
    if isinstance(prompt, list) and not engine.counts_tokens:
        raise APIError(400, "a remote model takes prompts as text, not token ids", param="prompt")
    if not engine.counts_tokens:  # a remote model: pass the request on
        params = [_params(request, engine, body, 0, i) for i in range(body.n)]
        if messages is not None:
            return engine, [engine.chat(messages, p) for p in params]
        assert prompt is not None and not isinstance(prompt, list)  # refused just above
        return engine, [engine.complete(prompt, p) for p in params]
    if messages is not None:
        prompt = engine.render(messages)
    if isinstance(prompt, list):
        if not all(0 <= i < engine.vocab_size for i in prompt):
            raise APIError(
                400, f"token ids must be between 0 and {engine.vocab_size - 1}", param="prompt"
            )
        ids = prompt
    else:
        assert prompt is not None  # the routes pass a prompt or messages
        ids = await run_in_threadpool(engine.tokenize, prompt)
    if not ids:
        raise APIError(
            400, "the prompt is empty", param="prompt" if messages is None else "messages"
        )
    if len(ids) >= engine.context_length:
        raise APIError(
            400,
            f"the prompt is {len(ids)} tokens but the context holds {engine.context_length}",
            param="messages",
            code="context_length_exceeded",
        )
    trim = messages is not None  # chat answers are trimmed; raw completions keep whitespace
    generations = [
        engine.generate(ids, _params(request, engine, body, len(ids), i), trim)
        for i in range(body.n)
    ]
    return engine, generations


def _envelope(kind: str, engine: Engine, body) -> dict:
    prefix = "chatcmpl" if kind == "chat.completion" else "cmpl"
    return {
        "id": f"{prefix}-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": body.model or engine.model_name,
    }


async def _complete_all(request: Request, generations: list[Generation]):
    """Run the `n` generations side by side (a batching engine decodes them together)."""
    metrics = request.app.state.metrics

    async def one(generation):
        timer = Timer(metrics)
        async for _ in pieces(generation):
            timer.piece()
        timer.done(generation.completion)
        return generation.completion

    metrics.in_flight.inc(len(generations))
    try:
        return await asyncio.gather(*(one(g) for g in generations))
    finally:
        metrics.in_flight.dec(len(generations))


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request):
    tool_calls.check(body)
    # the assistant's own system prompt unless the client sends one, and the documents'
    # chunks in the last user turn when knowledge is on (knowledge: None when off)
    # and the offered tools, earlier calls and their results put in words
    with tool_calls.as_400():
        messages, knowledge = await run_in_threadpool(
            request.app.state.assistant.prepare,
            [m.as_dict() for m in body.messages],
            AnswerOptions(knowledge=body.knowledge, tools=tool_calls.tools_of(body)),
        )
    engine, generations = await _start(request, body, messages=messages)
    head = _envelope("chat.completion", engine, body)
    if body.stream and tool_calls.active(body):
        return tool_calls.stream(
            request, body, generations, {**head, "object": "chat.completion.chunk"}
        )
    if body.stream:
        return _stream(
            request,
            body,
            generations,
            {**head, "object": "chat.completion.chunk"},
            chat=True,
            logprobs=bool(body.logprobs),
            knowledge=knowledge,
        )
    completions = await _complete_all(request, generations)
    return tool_calls.rewrite(
        body,
        attach(
            {
                **head,
                "choices": [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": c.text},
                        "logprobs": {"content": [chat_logprob(t) for t in g.logprobs]}
                        if body.logprobs
                        else None,
                        "finish_reason": c.finish_reason,
                    }
                    for i, (c, g) in enumerate(zip(completions, generations))
                ],
                "usage": usage_of(completions),
            },
            knowledge,
        ),
    )


@router.post("/completions")
async def completions(body: CompletionRequest, request: Request):
    if len(body.prompt) > 1 and body.stream:
        raise APIError(400, "streaming takes one prompt", param="prompt")
    choices: list[dict[str, Any]] = []
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for prompt in body.prompt:
        assert not isinstance(prompt, int)  # _prompts made one prompt of token ids a list of one
        engine, generations = await _start(request, body, prompt=prompt)
        head = _envelope("text_completion", engine, body)
        echo = (
            ""
            if not body.echo
            else prompt
            if isinstance(prompt, str)
            else engine.detokenize(prompt)
        )
        scored = (
            await echo_logprobs(engine, prompt, body)
            if body.echo and body.logprobs is not None
            else []
        )
        if body.stream:
            return _stream(
                request,
                body,
                generations,
                head,
                chat=False,
                echo=echo,
                logprobs=body.logprobs is not None,
                scored=scored,
            )
        completions = await _complete_all(request, generations)
        for c, g in zip(completions, generations):
            text = echo + c.text
            logprobs = text_logprobs(scored + g.logprobs) if body.logprobs is not None else None
            choices.append(
                {
                    "index": len(choices),
                    "text": text,
                    "logprobs": logprobs,
                    "finish_reason": c.finish_reason,
                }
            )
        for key, value in usage_of(completions).items():
            usage[key] += value
    return {**head, "choices": choices, "usage": usage}


def _stream(
    request: Request,
    body,
    generations: list[Generation],
    head: dict,
    chat: bool,
    echo: str = "",
    logprobs: bool = False,
    scored: Sequence[TokenLogprob] = (),
    knowledge: Knowledge | None = None,
) -> StreamingResponse:
    """Server-sent chunks. With `logprobs`, each chunk carries the logprobs of the tokens
    generated since the previous chunk (a chunk's text may hold several tokens, or none
    yet while a possible stop sequence is held back); `scored` are the echoed prompt's.
    With `knowledge`, a last chunk carries the cited sources (knowledge_api.py)."""
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    metrics = request.app.state.metrics

    def chunk(
        index: int,
        text: str | None = None,
        finish: str | None = None,
        role: bool = False,
        entries: list | None = None,
        offset: int = 0,
    ):
        if chat:
            delta = (
                {"role": "assistant", "content": ""}
                if role
                else ({"content": text} if text else {})
            )
            scores = {"content": [chat_logprob(e) for e in entries]} if entries else None
            choice = {"index": index, "delta": delta, "logprobs": scores, "finish_reason": finish}
        else:
            scores = text_logprobs(entries, offset) if entries else None
            choice = {
                "index": index,
                "text": text or "",
                "logprobs": scores,
                "finish_reason": finish,
            }
        return sse({**head, "choices": [choice]})

    async def chunks():
        for index, generation in enumerate(generations):
            timer = Timer(metrics)
            sent, offset = 0, 0  # logprobs sent so far; text_offset of the next token
            if chat:
                yield chunk(index, role=True)
            elif echo:
                yield chunk(index, echo, entries=list(scored) if logprobs else None)
                offset = sum(len(e.token.decode("utf-8", errors="replace")) for e in scored)
            async for piece in pieces(generation, on_cancel=metrics.cancelled.inc):
                timer.piece()
                entries = None
                if logprobs:  # the worker thread appends; take what is there now
                    entries = generation.logprobs[sent:]
                    sent += len(entries)
                yield chunk(index, piece, entries=entries, offset=offset)
                offset += sum(len(e.token.decode("utf-8", errors="replace")) for e in entries or ())
            timer.done(generation.completion)
            rest = generation.logprobs[sent:] if logprobs else None
            yield chunk(
                index, finish=generation.completion.finish_reason, entries=rest, offset=offset
            )
        if include_usage:
            yield sse(
                {**head, "choices": [], "usage": usage_of([g.completion for g in generations])}
            )
        if knowledge is not None:
            yield sse(sources_chunk(head, knowledge, generations))

    return event_stream(chunks(), metrics)


@router.post("/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request):
    engine = await run_in_threadpool(request.app.state.engines.get, body.model)
    vectors = await run_in_threadpool(engine.embed, body.input)
    tokens = sum(len(engine.tokenize(text)) for text in body.input) if engine.counts_tokens else 0
    encode = _base64 if body.encoding_format == "base64" else (lambda v: v)
    return {
        "object": "list",
        "model": body.model or engine.model_name,
        "data": [
            {"object": "embedding", "index": i, "embedding": encode(v)}
            for i, v in enumerate(vectors)
        ],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _base64(vector: list[float]) -> str:
    """OpenAI's compact form: little-endian float32 bytes, base64-encoded."""

    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


@router.post("/feedback")
async def feedback(body: FeedbackRequest, request: Request):
    """Store a thumbs up/down, an A/B choice or a correction in the home's feedback/."""
    row = await run_in_threadpool(store_feedback, request.app.state.feedback, body.feedback)
    return {"object": "feedback", "stored": body.feedback.type, "time": row["time"]}


@router.api_route(
    "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
async def unknown(path: str):
    """Anything else under /v1 is an OpenAI 404 (the web chat owns the rest of the site)."""
    raise APIError(404, f"Not Found: there is no endpoint /v1/{path}", code="unknown_url")
