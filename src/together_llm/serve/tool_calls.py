"""OpenAI tool calling for /v1/chat/completions: `tools`, `tool_choice`, `tool_calls` in the
answer (whole or streamed), and `tool` messages in the history.

The tools in words, the grammar that holds the answer to a call and the reading of calls
out of the answer are the assistant's (assistant/tools.py); here they meet HTTP: a bad tool
definition is a 400 naming `tools` or `tool_choice`, and a call goes into the response's
`tool_calls`, whole or as OpenAI streams it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..assistant.tools import (
    CallScanner,
    ScanEvent,
    ToolCall,
    ToolError,
    Tools,
    parse_calls,
)
from ..engine.protocol import Engine
from .errors import APIError
from .metrics import Timer
from .streaming import event_stream, pieces, sse, usage_of


@contextmanager
def as_400() -> Iterator[None]:
    """A tool error as the 400 that names the request's field at fault."""
    try:
        yield
    except ToolError as exc:
        raise APIError(400, str(exc), param=exc.field) from None


def tools_of(body) -> Tools:
    """The request's `tools` and `tool_choice` (a text completion's body has neither)."""
    functions = tuple(
        tool.function.model_dump(exclude_none=True) for tool in getattr(body, "tools", None) or []
    )
    choice = getattr(body, "tool_choice", None)
    with as_400():
        if choice is None or isinstance(choice, str):
            return Tools(functions, choice=choice)
        return Tools(functions, named=choice.function.name)  # {"function": {"name": ...}}


def active(body) -> bool:
    """True when the model may or must call one of the request's tools."""
    return tools_of(body).active


def check(body) -> None:
    """Refuse combinations that cannot work, before anything runs (in this order, which
    decides the one fault a request with several is told of)."""
    tools = tools_of(body)
    with as_400():
        tools.validate()
    if tools.active and body.response_format is not None and body.response_format.type != "text":
        raise APIError(
            400, "response_format cannot be combined with tools", param="response_format"
        )
    if tools.active:
        with as_400():
            tools.offered()


def grammar(engine: Engine, body) -> str | None:
    """The GBNF grammar for the answer when tools are offered (None: no tools, or an engine
    without grammars, where the answer is parsed instead)."""
    with as_400():
        return tools_of(body).grammar(engine)


def rewrite(body, response: dict) -> dict:
    """A whole chat.completion with each choice's call moved into `tool_calls`."""
    tools = tools_of(body)
    if not tools.active:
        return response
    for choice in response["choices"]:
        with as_400():
            _, calls = parse_calls(choice["message"]["content"], tools)
        if calls:
            choice["message"] = {
                "role": "assistant",
                "content": None,
                "tool_calls": [call.as_dict() for call in calls],
            }
            if choice["finish_reason"] == "stop":
                choice["finish_reason"] = "tool_calls"
    return response


def stream(request, body, generations, head: dict):
    """Server-sent chunks as OpenAI streams tool calls: the first chunk of a call carries
    its index, id, type and name with empty arguments, later ones pieces of the arguments;
    the last chunk says `finish_reason: "tool_calls"`. A text answer streams as content."""
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    metrics = request.app.state.metrics
    with as_400():
        names = tools_of(body).names()

    def chunk(index: int, delta: dict, finish: str | None = None) -> str:
        return sse(
            {
                **head,
                "choices": [
                    {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
        )

    def deltas(index: int, events: list[ScanEvent]):
        for kind, value in events:
            if kind == "text":
                yield chunk(index, {"content": value})
            elif kind == "call":
                call = ToolCall.new(value, "").as_dict()
                yield chunk(index, {"tool_calls": [{"index": 0, **call}]})
            elif kind == "arguments":
                yield chunk(index, {"tool_calls": [{"index": 0, "function": {"arguments": value}}]})

    async def chunks():
        for index, generation in enumerate(generations):
            timer = Timer(metrics)
            scanner = CallScanner(names)
            yield chunk(index, {"role": "assistant", "content": None})
            async for piece in pieces(generation, on_cancel=metrics.cancelled.inc):
                timer.piece()
                for event in deltas(index, scanner.feed(piece)):
                    yield event
            for event in deltas(index, scanner.finish()):
                yield event
            timer.done(generation.completion)
            finish = generation.completion.finish_reason
            called = scanner.called and finish == "stop"
            yield chunk(index, {}, "tool_calls" if called else finish)
        if include_usage:
            yield sse(
                {**head, "choices": [], "usage": usage_of([g.completion for g in generations])}
            )

    return event_stream(chunks(), metrics)
