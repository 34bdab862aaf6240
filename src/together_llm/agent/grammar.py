"""GBNF grammars that hold a model to a well-formed tool call (llama.cpp engines).

Each tool's JSON schema becomes grammar rules through llama-cpp-python's own converter
(`SchemaConverter`, the one behind `json_schema_to_gbnf`), all in one converter so the
rules of several tools share names without clashing. Around those rules we write the
frame: a ReAct step for the agent, or a `<tool_call>` block for the OpenAI API. With the
frame fixed by the grammar, even a very small model can only choose a real tool and
write arguments that parse and fit that tool's schema.
"""

from __future__ import annotations

import json

from ..errors import TllmError

# Any character, and any but a newline (GBNF character classes)
ANY = r"[\U00000001-\U0010FFFF]"
LINE = r"[^\n]"
THOUGHT_CHARS = 200  # a thought is one line of at most this many characters
CALL_OPEN, CALL_CLOSE = "<tool_call>\n", "\n</tool_call>"


def _literal(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid GBNF literal


class _Rules:
    """Grammar rules built up from several JSON schemas."""

    def __init__(self):
        from llama_cpp.llama_grammar import SchemaConverter

        self.converter = SchemaConverter(
            prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False
        )

    def schema(self, schema: dict, name: str) -> str:
        """Add the rules for `schema`; returns the name of its top rule."""
        try:
            resolved = self.converter.resolve_refs(schema, name)
            return self.converter.visit(resolved, name)
        except Exception as exc:  # the converter raises assorted errors on schemas it cannot do
            raise TllmError(
                f"the JSON schema of {name!r} cannot be turned into a grammar: {exc}"
            ) from None

    def rule(self, name: str, body: str) -> str:
        return self.converter._add_rule(name, body)

    def text(self, root: str) -> str:
        self.converter._rules["root"] = root
        if "char" in self.converter._rules:
            # JSON strings may not hold raw control characters (a newline is written as
            # backslash-n); the converter's rule allows them, and json.loads refuses them
            self.converter._rules["char"] = self.converter._rules["char"].replace(
                r'[^"\\]', r'[^"\\\x00-\x1F]', 1
            )
        return self.converter.format_grammar()


def _arguments(rules: _Rules, name: str, parameters: dict | None) -> str:
    schema = parameters or {"type": "object", "properties": {}}
    return rules.schema(schema, f"{name}-args")


def react_grammar(tools, final_only: bool = False) -> str:
    """One ReAct step: `Thought: ...` then either `Action: NAME` with `Action Input: {json}`
    fitting that tool, or `Final Answer: text`. With `final_only` only the answer is open
    (the last step, so the loop always ends with an answer)."""
    rules = _Rules()
    thought = rules.rule("thought", f"{LINE}{{1,{THOUGHT_CHARS}}}")
    final = rules.rule("final", f'"Final Answer: " {LINE}+')
    if final_only:
        return rules.text(f'"Thought: " {thought} "\\n" {final}')
    choices = [
        f'{_literal(tool.name)} "\\nAction Input: " {_arguments(rules, tool.name, tool.parameters)}'
        for tool in tools
    ]
    action = rules.rule("action", '"Action: " (' + " | ".join(choices) + ")")
    return rules.text(f'"Thought: " {thought} "\\n" ({action} | {final})')


def tool_call_grammar(tools: list[dict], allow_text: bool) -> str:
    """A `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` block for one of
    `tools` (OpenAI function specs: name, parameters); with `allow_text` the answer may
    instead be text, which then cannot start with "<" (so it is never taken for a call)."""
    rules = _Rules()
    calls = []
    for spec in tools:
        schema = {
            "type": "object",
            "properties": {
                "name": {"const": spec["name"]},
                "arguments": spec.get("parameters") or {"type": "object", "properties": {}},
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        calls.append(rules.schema(schema, f"call-{spec['name']}"))
    call = rules.rule("call", f"{_literal(CALL_OPEN)} ({' | '.join(calls)}) {_literal(CALL_CLOSE)}")
    if not allow_text:
        return rules.text(call)
    text = rules.rule("text", f"[^<] {ANY}*")
    return rules.text(f"{call} | {text}")
