"""OpenAI tool calling for /v1/chat/completions: `tools`, `tool_choice`, `tool_calls` in the
answer (whole or streamed), and `tool` messages in the history.

How tools reach the model (the same words for every chat template, since small models'
templates, SmolLM2's among them, know nothing of tools):
- the offered tools are added to the system message as OpenAI function specs (one JSON
  object a line) between `<tools>` and `</tools>`, with how to call one;
- a call is written `<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`, both
  when the model makes one and when an earlier assistant message carries `tool_calls`;
- a `tool` message becomes a user turn `<tool_response>\\n{"name": ..., "content": ...}
  \\n</tool_response>` (consecutive results share one turn).

On llama.cpp the answer is held to a grammar built from the tools' JSON schemas
(agent/grammar.py): with `tool_choice` "required" or a named function it must be one
call whose arguments fit the schema; with "auto" it is such a call or plain text (which
then does not start with "<"). Other engines get the same prompt, and their answer is
parsed: a well-formed call to an offered tool becomes `tool_calls`, anything else stays
text; "required" and named choices are refused there, since nothing could enforce them.
One answer makes at most one call.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable

from ..agent.grammar import CALL_CLOSE, CALL_OPEN, tool_call_grammar
from ..errors import TllmError
from .errors import APIError
from .metrics import Timer
from .streaming import event_stream, pieces, sse, usage_of

PREAMBLE = """You can call these tools (JSON function specifications):
<tools>
{specs}
</tools>
To call a tool, answer with only this, the arguments fitting its parameters:
<tool_call>
{{"name": "<tool name>", "arguments": {{<arguments as JSON>}}}}
</tool_call>
Otherwise answer the user in plain text."""

_HEADER = re.compile(
    r'\s*<tool_call>\s*\{\s*"name"\s*:\s*"(?P<name>[^"\\]*)"\s*,\s*"arguments"\s*:\s*'
)


def active(body) -> bool:
    """True when the model may or must call one of the request's tools."""
    return bool(getattr(body, "tools", None)) and body.tool_choice != "none"


def offered(body) -> list[dict]:
    """The function specs the model may call: all, or the one `tool_choice` names."""
    functions = [tool.function.model_dump(exclude_none=True) for tool in body.tools or []]
    choice = body.tool_choice
    if choice is not None and not isinstance(choice, str):
        named = [f for f in functions if f["name"] == choice.function.name]
        if not named:
            raise APIError(
                400,
                f"tool_choice names {choice.function.name!r}, which is not in tools",
                param="tool_choice",
            )
        return named
    return functions


def check(body) -> None:
    """Refuse combinations that cannot work, before anything runs."""
    if body.tool_choice not in (None, "none", "auto") and not body.tools:
        raise APIError(400, "tool_choice needs tools", param="tool_choice")
    names = [tool.function.name for tool in body.tools or []]
    if len(set(names)) < len(names):
        raise APIError(400, "two tools have the same name", param="tools")
    if active(body) and body.response_format is not None and body.response_format.type != "text":
        raise APIError(
            400, "response_format cannot be combined with tools", param="response_format"
        )
    if active(body):
        offered(body)


def grammar(engine, body) -> str | None:
    """The GBNF grammar for the answer when tools are offered (None: no tools, or an engine
    without grammars, where the answer is parsed instead)."""
    if not active(body):
        return None
    forced = body.tool_choice not in (None, "auto")
    if not engine.supports_grammar:
        if forced:
            raise APIError(
                400,
                f"tool_choice {_shown(body.tool_choice)} needs the llama.cpp engine "
                f"(grammar-constrained calls); {engine.model_name} runs on {engine.name}: "
                "use tool_choice auto",
                param="tool_choice",
            )
        return None

    try:
        return tool_call_grammar(offered(body), allow_text=not forced)
    except TllmError as exc:
        raise APIError(400, str(exc), param="tools") from None


def _shown(choice) -> str:
    return choice if isinstance(choice, str) else f"function {choice.function.name!r}"


# --- the conversation in words ------------------------------------------------------------


def render_messages(body, messages: list[dict]) -> list[dict]:
    """`messages` with tool calls, tool results and (when active) the offered tools put in
    words, so every chat template can render them (see the module's docstring)."""
    names = {
        call["id"]: call["function"]["name"] for m in messages for call in m.get("tool_calls") or []
    }
    out: list[dict] = []
    for message in messages:
        if message["role"] == "tool":
            result = json.dumps(
                {"name": names.get(message.get("tool_call_id"), ""), "content": message["content"]},
                ensure_ascii=False,
            )
            block = f"<tool_response>\n{result}\n</tool_response>"
            if out and out[-1].get("_results"):  # consecutive results: one user turn
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block, "_results": True})
        elif message.get("tool_calls"):
            calls = [
                call_text(c["function"]["name"], c["function"]["arguments"])
                for c in message["tool_calls"]
            ]
            text = "\n".join(([message["content"]] if message["content"] else []) + calls)
            out.append({"role": "assistant", "content": text})
        else:
            out.append({"role": message["role"], "content": message["content"]})
    out = [{"role": m["role"], "content": m["content"]} for m in out]
    if active(body):
        specs = "\n".join(json.dumps(f, ensure_ascii=False) for f in offered(body))
        preamble = PREAMBLE.format(specs=specs)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{preamble}"}
        else:
            out.insert(0, {"role": "system", "content": preamble})
    return out


def call_text(name: str, arguments: str) -> str:
    """A call as the model writes it (arguments: JSON text, reparsed when it parses)."""
    try:
        arguments = json.dumps(json.loads(arguments), ensure_ascii=False)
    except ValueError:
        pass  # a client's malformed arguments are shown as they came
    return f'{CALL_OPEN}{{"name": {json.dumps(name)}, "arguments": {arguments}}}{CALL_CLOSE}'


# --- reading calls out of the answer --------------------------------------------------------


class CallScanner:
    """Reads an answer piece by piece and tells text from a tool call as early as it can:
    events are ("text", piece), ("call", name) once the call's name is known, and
    ("arguments", piece) for the arguments' JSON as it is written (it ends where its braces
    balance). `complete` is True once a call's arguments closed."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = set(names)
        self.mode: str | None = None  # None (undecided), "text" or "call"
        self.buffer = ""
        self.name: str | None = None
        self.arguments = ""
        self.complete = False
        self._depth, self._in_string, self._escaped = 0, False, False

    def feed(self, piece: str) -> list[tuple]:
        if self.mode == "text":
            return [("text", piece)]
        if self.mode == "call":
            return self._scan(piece)
        self.buffer += piece
        head = self.buffer.lstrip()
        match = _HEADER.match(self.buffer)
        if match and match["name"] in self.names:
            self.mode, self.name = "call", match["name"]
            return [("call", self.name)] + self._scan(self.buffer[match.end() :])
        opening = head.startswith("<tool_call>") or "<tool_call>".startswith(head)
        if match or (head and not opening) or len(self.buffer) > 200:
            self.mode = "text"  # not a call (or one to a tool that was not offered)
            return [("text", self.buffer)]
        return []

    def finish(self) -> list[tuple]:
        """Events for what is still held back when the answer ends."""
        if self.mode is None and self.buffer:
            self.mode = "text"
            return [("text", self.buffer)]
        return []

    def _scan(self, text: str) -> list[tuple]:
        taken = []
        for char in text:
            if self.complete or (not self.arguments and char.isspace()):
                continue  # what follows the arguments (the closing tag) is not shown
            if not self.arguments and char != "{":
                self.complete = True  # arguments that are not an object: malformed
                break
            self.arguments += char
            taken.append(char)
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
            elif char in "}]":
                self._depth -= 1
                self.complete = self._depth == 0
        return [("arguments", "".join(taken))] if taken else []


def parse(text: str, names: Iterable[str]) -> tuple[str | None, dict | None]:
    """(content, tool call) of a whole answer: a call when it is complete and its
    arguments parse, else the text as content."""
    scanner = CallScanner(names)
    scanner.feed(text)
    scanner.finish()
    if scanner.mode == "call" and scanner.complete and scanner.arguments:
        assert scanner.name is not None  # known once the mode is "call"
        try:
            json.loads(scanner.arguments)
            return None, new_call(scanner.name, scanner.arguments)
        except ValueError:
            pass
    return text, None


def new_call(name: str, arguments: str) -> dict:
    return {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def rewrite(body, response: dict) -> dict:
    """A whole chat.completion with each choice's call moved into `tool_calls`."""
    if not active(body):
        return response
    names = [f["name"] for f in offered(body)]
    for choice in response["choices"]:
        content, call = parse(choice["message"]["content"], names)
        if call is not None:
            choice["message"] = {"role": "assistant", "content": None, "tool_calls": [call]}
            if choice["finish_reason"] == "stop":
                choice["finish_reason"] = "tool_calls"
    return response


# --- streaming --------------------------------------------------------------------------


def stream(request, body, generations, head: dict):
    """Server-sent chunks as OpenAI streams tool calls: the first chunk of a call carries
    its index, id, type and name with empty arguments, later ones pieces of the arguments;
    the last chunk says `finish_reason: "tool_calls"`. A text answer streams as content."""
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    metrics = request.app.state.metrics
    names = [f["name"] for f in offered(body)]

    def chunk(index: int, delta: dict, finish: str | None = None) -> str:
        return sse(
            {
                **head,
                "choices": [
                    {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
        )

    def deltas(index: int, events: list[tuple]):
        for kind, value in events:
            if kind == "text":
                yield chunk(index, {"content": value})
            elif kind == "call":
                call = new_call(value, "")
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
            called = scanner.mode == "call" and scanner.complete and finish == "stop"
            yield chunk(index, {}, "tool_calls" if called else finish)
        if include_usage:
            yield sse(
                {**head, "choices": [], "usage": usage_of([g.completion for g in generations])}
            )

    return event_stream(chunks(), metrics)
