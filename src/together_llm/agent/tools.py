"""Tools an agent may call: a name, a description, a JSON schema of the arguments, and
the Python function that does the work.

`tool_from_function` reads the schema off a typed signature (str, int, float, bool,
list[...], dict, Optional, Literal) and the description off the docstring, so a user's
own function becomes a tool without any registration code. `Tool.call` checks the
arguments against the schema before calling, so a model's mistake comes back as a clear
observation instead of a Python traceback.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import TllmError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object"}


class ToolError(TllmError):
    """A tool refused its arguments or failed; the agent shows it as the observation."""


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict  # JSON schema of an object: {"type": "object", "properties", "required"}
    function: Callable[..., Any] = field(repr=False)

    def call(self, arguments: dict) -> str:
        """Run the tool on `arguments` (checked against the schema); the result as text."""
        check_arguments(self.parameters, arguments, self.name)
        try:
            result = self.function(**arguments)
        except ToolError:
            raise
        except Exception as exc:  # a user's tool failing is an observation, not a crash
            raise ToolError(f"{self.name} failed: {type(exc).__name__}: {exc}") from None
        if isinstance(result, str):
            return result
        try:
            return json.dumps(result, ensure_ascii=False)
        except (TypeError, ValueError):
            return str(result)

    def openai_spec(self) -> dict:
        """The tool as OpenAI's `tools` list entry."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class ToolRegistry:
    """Tools by name, in the order they were added."""

    def __init__(self, tools: Sequence[Tool] = ()):
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if not _NAME.match(tool.name):
            raise TllmError(f"tool name {tool.name!r} must be letters, digits and '_' (at most 64)")
        if tool.name in self._tools:
            raise TllmError(f"two tools are called {tool.name!r}; rename one")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool:
        if name not in self._tools:
            raise ToolError(f"there is no tool {name!r}; tools: {', '.join(self._tools)}")
        return self._tools[name]

    def names(self) -> list[str]:
        return list(self._tools)

    def __iter__(self):
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)


# --- schemas from signatures --------------------------------------------------------------


def tool_from_function(function: Callable, name: str | None = None) -> Tool:
    """A Tool from a function with type hints on every parameter and a docstring."""
    name = name or function.__name__
    doc = inspect.getdoc(function)
    if not doc:
        raise TllmError(f"tool {name}: add a docstring saying what it does (the model reads it)")
    try:
        hints = typing.get_type_hints(function)
    except Exception as exc:  # an annotation naming something undefined
        raise TllmError(f"tool {name}: its type hints do not resolve: {exc}") from None
    properties, required = {}, []
    described = _argument_docs(doc)
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TllmError(
                f"tool {name}: *args and **kwargs cannot be described to a model; "
                "name each parameter"
            )
        if parameter.name not in hints:
            raise TllmError(
                f"tool {name}: parameter {parameter.name!r} has no type hint; "
                f"write e.g. `def {name}({parameter.name}: str)`"
            )
        schema = type_schema(hints[parameter.name], f"tool {name}, parameter {parameter.name!r}")
        if parameter.name in described:
            schema["description"] = described[parameter.name]
        properties[parameter.name] = schema
        if parameter.default is inspect.Parameter.empty:
            required.append(parameter.name)
    summary = doc.split("\n\n")[0].replace("\n", " ").strip()
    parameters = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    return Tool(name, summary, parameters, function)


def type_schema(hint, where: str) -> dict:
    """The JSON schema of one Python type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _SIMPLE:
        return {"type": _SIMPLE[hint]}
    if origin in (typing.Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        if len(kept) == 1:  # Optional[X]: the model may leave it out (the default applies)
            return type_schema(kept[0], where)
        return {"anyOf": [type_schema(a, where) for a in kept]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple, set) or hint in (list, tuple, set):
        return (
            {"type": "array", "items": type_schema(args[0], where)} if args else {"type": "array"}
        )
    if origin is dict:
        return {"type": "object"}
    raise TllmError(
        f"{where}: type {hint!r} cannot be described as JSON; use str, int, float, "
        "bool, list[...], dict, Optional[...] or Literal[...]"
    )


def _argument_docs(doc: str) -> dict[str, str]:
    """`name: text` lines under an `Args:` heading (Google style) of a docstring."""
    found, inside = {}, False
    for line in doc.splitlines():
        if line.strip() in ("Args:", "Arguments:", "Parameters:"):
            inside = True
            continue
        match = re.match(r"\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)", line) if inside else None
        if match:
            found[match.group(1)] = match.group(2).strip()
        elif inside and line.strip() and not line.startswith((" ", "\t")):
            inside = False
    return found


# --- checking arguments -------------------------------------------------------------------


def check_arguments(schema: dict, arguments, tool: str) -> None:
    """Refuse arguments that do not fit the tool's schema, naming the field."""
    if not isinstance(arguments, dict):
        raise ToolError(f"{tool} takes a JSON object of arguments, not {type(arguments).__name__}")
    properties = schema.get("properties", {})
    missing = [key for key in schema.get("required", []) if key not in arguments]
    if missing:
        raise ToolError(f"{tool} needs the argument(s) {', '.join(missing)}")
    unknown = [key for key in arguments if key not in properties]
    if unknown and schema.get("additionalProperties") is False:
        raise ToolError(
            f"{tool} has no argument(s) {', '.join(unknown)}; "
            f"it takes {', '.join(properties) or 'none'}"
        )
    for key, value in arguments.items():
        if key in properties and not fits(properties[key], value):
            raise ToolError(
                f"{tool}: argument {key!r} must be {_describe(properties[key])}, "
                f"not {json.dumps(value)}"
            )


def fits(schema: dict, value) -> bool:
    """Whether `value` matches the (small) schema subset `type_schema` writes."""
    if "anyOf" in schema:
        return any(fits(s, value) for s in schema["anyOf"])
    if "enum" in schema:
        return value in schema["enum"]
    kind = schema.get("type")
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list) and all(fits(schema.get("items", {}), x) for x in v),
        "null": lambda v: v is None,
    }
    return kind is None or checks.get(kind, lambda v: True)(value)


def _describe(schema: dict) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_describe(s) for s in schema["anyOf"])
    kind = schema.get("type", "any value")
    return {"integer": "an integer", "array": "an array", "object": "an object"}.get(
        kind, f"a {kind}"
    )
