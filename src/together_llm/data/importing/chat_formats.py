"""Readers of the chat formats the field uses: one function per format, each turning one
source record (a dict) into a row shaped like the canonical `chat` row.

alpaca    {"instruction", "input", "output"} and optionally "system" and "history"
          ([[instruction, answer], ...] earlier turns, as LLaMA-Factory writes them)
sharegpt  {"conversations": [{"from": "human"/"gpt"/"system"..., "value"}, ...]}
belle     BELLE's instruction layout (alpaca's keys), its multi-turn layout where
          "instruction" holds the dialogue so far as "Human: ...\\nAssistant: ...\\nHuman: ..."
          text and "output" is the last answer, and its {"conversations": [...]} layout
openai    {"messages": [{"role", "content"}, ...]}, content a string or a list of text parts

`alpaca` checks every field it reads and builds a canonical row by construction (the
importer's fast path, see formats.FORMATS); the others map speakers and fields, and leave
content and turn order to `kinds.validate`. BELLE files mix both layouts, so an alpaca row
whose instruction is a "Human: ..." dialogue is split into its turns too (and validated),
whatever the first row of the file looked like.
"""

from __future__ import annotations

import re

import orjson

from ..kinds import RowError, validate

# ShareGPT exports name the assistant after the product that answered.
SPEAKERS = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "claude": "assistant",
    "ai": "assistant",
    "bot": "assistant",
    "system": "system",
}
# OpenAI renamed the system role for newer models; both mean the same here.
OPENAI_ROLES = {"developer": "system"}


def _field(rec: dict, key: str, where: str = "") -> str:
    """A required non-blank string, with the reasons `kinds.validate` uses."""
    value = rec.get(key)
    if value is None:
        raise RowError("missing field", f"{where}{key!r} is missing")
    if type(value) is not str:
        raise RowError("wrong type", f"{where}{key!r} must be a string, not {type(value).__name__}")
    if not value or value.isspace():
        raise RowError("empty content", f"{where}{key!r} is empty")
    return value


def _optional(rec: dict, key: str) -> str | None:
    """An optional string: absent, null or blank means "not given"."""
    value = rec.get(key)
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise RowError("wrong type", f"{key!r} must be a string, not {type(value).__name__}")
    return None if value.isspace() else value


def _alpaca_turn(rec: dict) -> tuple[str, str]:
    """The user's text (instruction, then input when there is one) and the answer."""
    instruction, extra, output = rec.get("instruction"), rec.get("input"), rec.get("output")
    # The common case in a handful of type checks; anything odd takes the careful path.
    if (
        type(instruction) is not str
        or type(output) is not str
        or not instruction
        or not output
        or instruction.isspace()
        or output.isspace()
    ):
        instruction = _field(rec, "instruction")
        output = _field(rec, "output")
    if extra:
        if type(extra) is not str:
            raise RowError("wrong type", f"'input' must be a string, not {type(extra).__name__}")
        if not extra.isspace():
            instruction = f"{instruction}\n\n{extra}"
    elif extra is not None and extra != "":
        raise RowError("wrong type", f"'input' must be a string, not {type(extra).__name__}")
    return instruction, output


# What a BELLE dialogue's first character can be: rows are looked at this closely first,
# since the regular expression costs more than the rest of the fast path's checks.
_DIALOGUE_FIRST = "Hh \t\n\r\xa0\u3000"


def alpaca(rec: dict) -> dict:
    """instruction (+ input) -> user, output -> assistant; system and history when given."""
    instruction, output = _alpaca_turn(rec)
    if instruction[0] in _DIALOGUE_FIRST and is_belle_dialogue(rec):
        return _alpaca_dialogue(rec)
    messages = [{"role": "user", "content": instruction}, {"role": "assistant", "content": output}]
    if "history" in rec or "system" in rec:
        messages = _alpaca_context(rec) + messages
    return {"messages": messages}


# orjson's compact serialization of a two-message chat row, around its two texts.
_USER = b'{"messages":[{"role":"user","content":'
_ASSISTANT = b'},{"role":"assistant","content":'
_END = b"}]}\n"


def alpaca_line(rec: dict) -> bytes:
    """`alpaca(rec)` serialized as one JSON line, byte for byte what orjson.dumps makes of
    it, without building the row's dicts first (this step takes a third less time)."""
    if "history" in rec or "system" in rec:
        return orjson.dumps(alpaca(rec), option=orjson.OPT_APPEND_NEWLINE)
    instruction, output = _alpaca_turn(rec)
    if instruction[0] in _DIALOGUE_FIRST and is_belle_dialogue(rec):
        return orjson.dumps(_alpaca_dialogue(rec), option=orjson.OPT_APPEND_NEWLINE)
    dumps = orjson.dumps
    return b"".join((_USER, dumps(instruction), _ASSISTANT, dumps(output), _END))


def _alpaca_context(rec: dict) -> list[dict]:
    """The system message and earlier turns that come before an alpaca row's own."""
    before = []
    system = _optional(rec, "system")
    if system is not None:
        before.append({"role": "system", "content": system})
    history = rec.get("history")
    if history is None:
        return before
    if type(history) is not list:
        raise RowError(
            "wrong type",
            f"'history' must be a list of [instruction, answer] pairs, "
            f"not {type(history).__name__}",
        )
    for i, pair in enumerate(history):
        if type(pair) not in (list, tuple) or len(pair) != 2:
            raise RowError("wrong type", f"history[{i}] must be an [instruction, answer] pair")
        turn = {"user": pair[0], "assistant": pair[1]}
        for role in ("user", "assistant"):
            before.append({"role": role, "content": _field(turn, role, f"history[{i}].")})
    return before


def sharegpt(rec: dict) -> dict:
    """conversations[].from/value -> messages[].role/content (a top-level "system" string,
    as LLaMA-Factory's ShareGPT layout has, becomes the system message)."""
    turns = rec.get("conversations")
    if turns is None:
        raise RowError("missing field", "'conversations' is missing")
    if type(turns) is not list:
        raise RowError("wrong type", f"'conversations' must be a list, not {type(turns).__name__}")
    messages = []
    for i, turn in enumerate(turns):
        if type(turn) is not dict:
            raise RowError(
                "wrong type", f"conversations[{i}] must be an object with from and value"
            )
        speaker = turn.get("from", turn.get("role"))
        if speaker is None:
            raise RowError("missing field", f"conversations[{i}].'from' is missing")
        role = SPEAKERS.get(speaker.lower()) if type(speaker) is str else None
        if role is None:
            raise RowError(
                "unknown role",
                f"conversations[{i}].from {speaker!r} is not a speaker this "
                f"format knows ({', '.join(SPEAKERS)})",
            )
        messages.append({"role": role, "content": turn.get("value", turn.get("content"))})
    system = _optional(rec, "system")
    if system is not None and not (messages and messages[0]["role"] == "system"):
        messages.insert(0, {"role": "system", "content": system})
    return {"messages": messages}


# A speaker label at the start of a line of BELLE's dialogue text ("Human:", "Assistant：").
_BELLE_TURN = re.compile(r"(?:^|\n)[ \t]*(Human|Assistant)[ \t]*[:：]", re.IGNORECASE)
# A dialogue starts with the human's turn.
_BELLE_START = re.compile(r"\s*Human\s*[:：]", re.IGNORECASE)


def is_belle_dialogue(rec: dict) -> bool:
    instruction = rec.get("instruction")
    return type(instruction) is str and _BELLE_START.match(instruction) is not None


def belle(rec: dict) -> dict:
    """Any of BELLE's three layouts, told apart by their keys and the instruction's text."""
    if "conversations" in rec:
        return sharegpt(rec)
    if not is_belle_dialogue(rec):
        return alpaca(rec)
    return {"messages": _belle_dialogue(rec)}


def _belle_dialogue(rec: dict) -> list[dict]:
    """The turns of a dialogue instruction, the input joined to the last user turn, then
    the output as the answer."""
    messages = _belle_turns(rec["instruction"])
    extra = _optional(rec, "input")
    if extra is not None and messages and messages[-1]["role"] == "user":
        messages[-1]["content"] = f"{messages[-1]['content']}\n\n{extra}"
    messages.append({"role": "assistant", "content": _field(rec, "output")})
    return messages


def _alpaca_dialogue(rec: dict) -> dict:
    """An alpaca row holding a BELLE dialogue: split, after any system prompt and history,
    and checked like rows of formats that are not exact."""
    before = _alpaca_context(rec) if "history" in rec or "system" in rec else []
    return validate("chat", {"messages": before + _belle_dialogue(rec)})


def _belle_turns(dialogue: str) -> list[dict]:
    """'Human: hi\\nAssistant: hello\\nHuman: bye\\nAssistant:' -> user, assistant, user; the
    empty trailing 'Assistant:' is where the row's output goes."""
    marks = list(_BELLE_TURN.finditer(dialogue))
    messages = []
    for mark, following in zip(marks, marks[1:] + [None]):
        end = following.start() if following else len(dialogue)
        role = "user" if mark.group(1).lower() == "human" else "assistant"
        messages.append({"role": role, "content": dialogue[mark.end() : end].strip()})
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()
    return messages


def openai(rec: dict) -> dict:
    """OpenAI chat JSONL: roles kept ("developer" read as system), text parts joined."""
    messages = rec.get("messages")
    if type(messages) is list:
        messages = [openai_message(m, f"messages[{i}]") for i, m in enumerate(messages)]
    return {"messages": messages}


def openai_message(message, where: str):
    """One {"role", "content"} message with its content as plain text; anything that is not
    a message is left for `kinds.validate` to name."""
    if type(message) is not dict:
        return message
    role, content = message.get("role"), message.get("content")
    if type(content) is list:
        content = _text_parts(content, where)
    if type(role) is str:  # anything else (a list is not even hashable) is validate's to name
        role = OPENAI_ROLES.get(role, role)
    return {"role": role, "content": content}


def _text_parts(parts: list, where: str) -> str:
    texts = []
    for i, part in enumerate(parts):
        if type(part) is str:
            texts.append(part)
        elif (
            type(part) is dict
            and part.get("type", "text") == "text"
            and type(part.get("text")) is str
        ):
            texts.append(part["text"])
        else:
            kind = part.get("type") if type(part) is dict else type(part).__name__
            raise RowError(
                "wrong type", f"{where}.content[{i}] is a {kind!r} part; only text can be imported"
            )
    return "\n".join(texts)
