"""Tools a client offers the model (OpenAI function calling), in words and back.

How tools reach the model (the same words for every chat template, since small models'
templates, SmolLM2's among them, know nothing of tools):
- the offered tools are added to the system message as OpenAI function specs (one JSON
  object a line) between `<tools>` and `</tools>`, with how to call one;
- a call is written `<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`, both
  when the model makes one and when an earlier assistant message carries `tool_calls`;
- a `tool` message becomes a user turn `<tool_response>\\n{"name": ..., "content": ...}
  \\n</tool_response>` (consecutive results share one turn).

On an engine with grammars (llama.cpp) the answer is held to a grammar built from the
tools' JSON schemas (agent/grammar.py): with `choice` "required" or a named function it
must be one call whose arguments fit the schema; with "auto" it is such a call or plain
text (which then does not start with "<"). Other engines get the same prompt, and their
answer is parsed: a well-formed call to an offered tool becomes a `ToolCall`, anything
else stays text; "required" and named choices are refused there, since nothing could
enforce them. One answer makes at most one call.

Bad tool definitions raise `ToolError`, a `TllmError` that says which part was wrong
(`field`: "tools" or "tool_choice"), so the OpenAI route can name it in its 400.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ..agent.grammar import CALL_CLOSE, CALL_OPEN, tool_call_grammar
from ..engine.protocol import Engine
from ..errors import TllmError

PREAMBLE = """You can call these tools (JSON function specifications):
<tools>
{specs}
</tools>
To call a tool, answer with only this, the arguments fitting its parameters:
<tool_call>
{{"name": "<tool name>", "arguments": {{<arguments as JSON>}}}}
</tool_call>
Otherwise answer the user in plain text."""

CHOICES = (None, "none", "auto", "required")

# The start of a call up to its arguments: enough to know which tool is called
_HEADER = re.compile(
    r'\s*<tool_call>\s*\{\s*"name"\s*:\s*"(?P<name>[^"\\]*)"\s*,\s*"arguments"\s*:\s*'
)
_UNDECIDED_CHARS = 200  # text this long that is not yet a call's header never becomes one

ScanEvent = tuple[Literal["text", "call", "arguments"], str]


class ToolError(TllmError):
    """A tool definition or choice that cannot work; `field` is the part at fault."""

    def __init__(self, message: str, field: Literal["tools", "tool_choice"]) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ToolCall:
    """One call the model made: which tool, with what arguments (JSON text, as OpenAI
    carries them), under an id the tool's result will name."""

    id: str
    name: str
    arguments: str

    @classmethod
    def new(cls, name: str, arguments: str) -> ToolCall:
        return cls(f"call_{uuid.uuid4().hex[:24]}", name, arguments)

    def as_dict(self) -> dict:
        """OpenAI's form, the one an assistant message's `tool_calls` carries."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True)
class Tools:
    """The functions offered (OpenAI function specs: name, description, parameters) and how
    the model may use them: `choice` "none", "auto" or "required" (None: as "auto"), or
    `named`, the one function it must call."""

    functions: tuple[dict, ...] = ()
    choice: str | None = None
    named: str | None = None

    def __post_init__(self) -> None:
        if self.choice not in CHOICES:
            raise ToolError(
                f"tool_choice {self.choice!r}: use none, auto, required or a function",
                "tool_choice",
            )

    @property
    def active(self) -> bool:
        """True when the model may or must call one of the tools."""
        return bool(self.functions) and self.choice != "none"

    @property
    def forced(self) -> bool:
        """True when the answer must be a call."""
        return self.named is not None or self.choice == "required"

    def validate(self) -> None:
        """Refuse a forced choice with nothing to call, and two tools of one name."""
        if self.forced and not self.functions:
            raise ToolError("tool_choice needs tools", "tool_choice")
        names = [f["name"] for f in self.functions]
        if len(set(names)) < len(names):
            raise ToolError("two tools have the same name", "tools")

    def offered(self) -> list[dict]:
        """The function specs the model may call: all, or the one `named`."""
        if self.named is None:
            return list(self.functions)
        named = [f for f in self.functions if f["name"] == self.named]
        if not named:
            raise ToolError(
                f"tool_choice names {self.named!r}, which is not in tools", "tool_choice"
            )
        return named

    def names(self) -> list[str]:
        return [f["name"] for f in self.offered()]

    def grammar(self, engine: Engine) -> str | None:
        """The GBNF grammar for the answer (None: no tools, or an engine without grammars,
        where the answer is parsed instead)."""
        if not self.active:
            return None
        if not engine.supports_grammar:
            if self.forced:
                raise ToolError(
                    f"tool_choice {self._shown()} needs the llama.cpp engine "
                    f"(grammar-constrained calls); {engine.model_name} runs on {engine.name}: "
                    "use tool_choice auto",
                    "tool_choice",
                )
            return None
        offered = self.offered()  # outside the try: its own error names tool_choice
        try:
            return tool_call_grammar(offered, allow_text=not self.forced)
        except TllmError as exc:  # a schema the grammar converter cannot do
            raise ToolError(str(exc), "tools") from None

    def _shown(self) -> str:
        return f"function {self.named!r}" if self.named is not None else str(self.choice)


# --- the conversation in words ------------------------------------------------------------


def render_tools(messages: list[dict], tools: Tools | None = None) -> list[dict]:
    """`messages` (OpenAI's form, with `tool_calls` and `tool` messages) with the calls, the
    results and, when active, the offered tools put in words, so every chat template can
    render them (see the module's docstring)."""
    names = {
        call["id"]: call["function"]["name"] for m in messages for call in m.get("tool_calls") or []
    }
    out: list[dict] = []
    after_result = False  # consecutive results share one user turn
    for message in messages:
        if message["role"] == "tool":
            result = json.dumps(
                {"name": names.get(message.get("tool_call_id"), ""), "content": message["content"]},
                ensure_ascii=False,
            )
            block = f"<tool_response>\n{result}\n</tool_response>"
            if after_result:
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block})
            after_result = True
            continue
        after_result = False
        if message.get("tool_calls"):
            calls = [
                call_text(c["function"]["name"], c["function"]["arguments"])
                for c in message["tool_calls"]
            ]
            text = "\n".join(([message["content"]] if message["content"] else []) + calls)
            out.append({"role": "assistant", "content": text})
        else:
            out.append({"role": message["role"], "content": message["content"]})
    if tools is not None and tools.active:
        specs = "\n".join(json.dumps(f, ensure_ascii=False) for f in tools.offered())
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

    @property
    def called(self) -> bool:
        """True once the answer is a call whose arguments closed."""
        return self.mode == "call" and self.complete

    def feed(self, piece: str) -> list[ScanEvent]:
        if self.mode == "text":
            return [("text", piece)]
        if self.mode == "call":
            return self._scan(piece)
        self.buffer += piece
        head = self.buffer.lstrip()
        match = _HEADER.match(self.buffer)
        if match and match["name"] in self.names:
            self.mode, self.name = "call", match["name"]
            return [("call", match["name"]), *self._scan(self.buffer[match.end() :])]
        opening = head.startswith("<tool_call>") or "<tool_call>".startswith(head)
        if match or (head and not opening) or len(self.buffer) > _UNDECIDED_CHARS:
            self.mode = "text"  # not a call (or one to a tool that was not offered)
            return [("text", self.buffer)]
        return []

    def finish(self) -> list[ScanEvent]:
        """Events for what is still held back when the answer ends."""
        if self.mode is None and self.buffer:
            self.mode = "text"
            return [("text", self.buffer)]
        return []

    def _scan(self, text: str) -> list[ScanEvent]:
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


def parse_calls(text: str, tools: Tools) -> tuple[str | None, list[ToolCall]]:
    """(content, calls) of a whole answer: no content and the one call when the answer is a
    complete call to an offered tool whose arguments parse, else the text and no calls."""
    if not tools.active:
        return text, []
    scanner = CallScanner(tools.names())
    scanner.feed(text)
    scanner.finish()
    if scanner.called and scanner.arguments:
        assert scanner.name is not None  # known once the mode is "call"
        try:
            json.loads(scanner.arguments)
        except ValueError:
            return text, []  # a call whose arguments are not JSON stays text
        return None, [ToolCall.new(scanner.name, scanner.arguments)]
    return text, []
