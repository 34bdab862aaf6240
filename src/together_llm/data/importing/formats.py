"""The source formats `tllm data import` reads, which dataset kinds each can fill, and how a
file's format is told from its extension and its first record.

| format     | kinds                          | a record                                       |
| ---------- | ------------------------------ | ---------------------------------------------- |
| alpaca     | chat                           | instruction, input, output (system, history)   |
| sharegpt   | chat                           | conversations: [{from, value}] (system)        |
| belle      | chat                           | alpaca's keys, the instruction possibly a      |
|            |                                | "Human: ... Assistant: ..." dialogue; or       |
|            |                                | conversations                                  |
| openai     | chat                           | messages: [{role, content}]                    |
| preference | preference                     | prompt, chosen, rejected                       |
| kto        | feedback                       | prompt, completion, label                      |
| jsonl      | every kind                     | the kind's canonical row                       |
| csv        | text, classification, seq2seq, | a header row, then one record a row            |
|            | preference, feedback           |                                                |
| text       | text                           | a .txt/.md file, or a folder of them (one row  |
|            |                                | a file)                                        |

Every format reads its records into a row shaped like the kind's canonical row; the importer
then runs `kinds.validate` on it, except for formats marked `exact`, whose reader checks
every field itself and can only build canonical rows (alpaca: the million-row fast path).
`--column dst=src` renames a record's keys before its format reads it, in any format but
text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from ...errors import TllmError
from ..kinds import KINDS, RowError, validate
from . import chat_formats
from .sources import first_record

# The canonical fields of each kind, the names --column may map to for jsonl and csv.
KIND_FIELDS = {
    "chat": ("messages",),
    "text": ("text",),
    "preference": ("prompt", "chosen", "rejected"),
    "feedback": ("prompt", "completion", "label"),
    "classification": ("text", "label"),
    "seq2seq": ("source", "target", "context"),
    "choice": ("question", "choices", "answer"),
}
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv", ".tsv")
TEXT_SUFFIXES = (".txt", ".md", ".markdown")


@dataclass(frozen=True)
class Format:
    name: str
    kinds: tuple[str, ...]
    fields: tuple[str, ...]  # what a record holds; also the names --column may map to
    read: Callable[[dict], dict] | None  # record -> row; None: depends on the kind
    exact: bool = False  # `read` checks everything and builds canonical rows itself
    line: Callable[[dict], bytes] | None = None  # an exact `read`, serialized as a JSON line


# ---- preference and KTO ------------------------------------------------------------------

_LABELS = {"true": True, "false": False, "1": True, "0": False}


def _prompt(rec: dict) -> list | None:
    """A prompt given as a string (one user message) or as messages; a "system" string
    becomes the system message when the prompt has none."""
    prompt = rec.get("prompt")
    if type(prompt) is str:
        prompt = [{"role": "user", "content": prompt}]
    elif type(prompt) is list:
        prompt = [chat_formats.openai_message(m, f"prompt[{i}]") for i, m in enumerate(prompt)]
    system = rec.get("system")
    if (
        type(prompt) is list
        and type(system) is str
        and system.strip()
        and not (prompt and type(prompt[0]) is dict and prompt[0].get("role") == "system")
    ):
        prompt.insert(0, {"role": "system", "content": system})
    return prompt


def _answer(rec: dict, key: str, prompt_given: bool):
    """An answer as a string, or TRL's message-list form: the answer is the last (assistant)
    message and what comes before it is the prompt. Returns (answer, prompt before it)."""
    value = rec.get(key)
    if type(value) is not list:
        return value, None
    if not value or type(value[-1]) is not dict or value[-1].get("role") != "assistant":
        raise RowError("role order", f"{key!r} must end with an assistant message")
    before = [chat_formats.openai_message(m, f"{key}[{i}]") for i, m in enumerate(value[:-1])]
    if prompt_given and before:
        raise RowError("wrong type", f"{key!r} must hold only the answer when 'prompt' is given")
    return chat_formats.openai_message(value[-1], f"{key}[-1]")["content"], before


def preference(rec: dict) -> dict:
    """prompt/chosen/rejected; TRL's implicit-prompt rows (chosen and rejected are whole
    conversations that share everything but the last answer) are read too."""
    prompt = _prompt(rec)
    chosen, before_chosen = _answer(rec, "chosen", prompt is not None)
    rejected, before_rejected = _answer(rec, "rejected", prompt is not None)
    if prompt is None and before_chosen:
        if before_chosen != before_rejected:
            raise RowError(
                "missing field",
                "'prompt' is missing and 'chosen' and 'rejected' "
                "do not start with the same conversation",
            )
        prompt = before_chosen
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def kto(rec: dict) -> dict:
    """prompt/completion/label, with the label a boolean or "true"/"false"/1/0."""
    prompt = _prompt(rec)
    completion, before = _answer(rec, "completion", prompt is not None)
    if prompt is None and before:
        prompt = before
    label = rec.get("label")
    if label is not None and type(label) is not bool:
        if type(label) is int or type(label) is str:
            label = _LABELS.get(str(label).strip().lower(), label)
        if type(label) is not bool:
            raise RowError("bad label", f"'label' must be true or false (or 1/0), not {label!r}")
    return {"prompt": prompt, "completion": completion, "label": label}


def _canonical(kind: str) -> Callable[[dict], dict]:
    """jsonl and csv rows already in the kind's schema; preference and feedback rows also
    take a prompt string and a text label, as a CSV cell holds them."""
    if kind == "preference":
        return preference
    if kind == "feedback":
        return kto
    if kind == "classification":

        def classification(rec):  # numeric class ids are common; the schema wants text
            label = rec.get("label")
            if type(label) is int:
                rec = {**rec, "label": str(label)}
            return rec

        return classification
    return lambda rec: rec


def _text_file(rec: dict) -> dict:
    text = rec.get("text")
    if not text or text.isspace():
        raise RowError("empty content", "the file is empty or holds only whitespace")
    return rec


FORMATS = {
    f.name: f
    for f in (
        Format(
            "alpaca",
            ("chat",),
            ("instruction", "input", "output", "system", "history"),
            chat_formats.alpaca,
            exact=True,
            line=chat_formats.alpaca_line,
        ),
        Format("sharegpt", ("chat",), ("conversations", "system"), chat_formats.sharegpt),
        Format(
            "belle",
            ("chat",),
            ("instruction", "input", "output", "conversations"),
            chat_formats.belle,
        ),
        Format("openai", ("chat",), ("messages",), chat_formats.openai),
        Format(
            "preference", ("preference",), ("prompt", "chosen", "rejected", "system"), preference
        ),
        Format("kto", ("feedback",), ("prompt", "completion", "label", "system"), kto),
        Format("jsonl", KINDS, (), None),
        Format("csv", ("text", "classification", "seq2seq", "preference", "feedback"), (), None),
        Format("text", ("text",), (), _text_file),
    )
}


def formats_for(kind: str) -> list[str]:
    return [f.name for f in FORMATS.values() if kind in f.kinds]


def check_format(fmt: str, kind: str, how: str = "") -> Format:
    """The Format, or a TllmError naming the formats that `kind` accepts."""
    if fmt not in FORMATS:
        raise TllmError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    spec = FORMATS[fmt]
    if kind not in spec.kinds:
        made = "/".join(spec.kinds)
        raise TllmError(
            f"format {fmt}{how} makes {made} rows, not {kind}: kind {kind} reads "
            f"{', '.join(formats_for(kind))}"
        )
    return spec


def split_columns(pairs) -> dict[str, str]:
    """--column dst=src pairs -> {dst: src}: the row's field dst comes from the source's src."""
    columns = {}
    for pair in pairs:
        dst, sep, src = pair.partition("=")
        dst, src = dst.strip(), src.strip()
        if not sep or not dst or not src:
            raise TllmError(
                f"--column {pair!r}: write it as FIELD=COLUMN, e.g. --column text=review"
            )
        columns[dst] = src
    return columns


def check_columns(columns: dict[str, str], fmt: str, kind: str) -> dict[str, str]:
    """Refuse a --column whose field the format does not read."""
    if not columns:
        return columns
    if fmt == "text":
        raise TllmError("--column does not apply to the text format (one row a file)")
    fields = FORMATS[fmt].fields or KIND_FIELDS[kind]
    for dst in columns:
        if dst not in fields:
            raise TllmError(
                f"--column {dst}=...: format {fmt} for kind {kind} reads "
                f"{', '.join(fields)}, not {dst!r}"
            )
    return columns


def converter(fmt: str, kind: str, columns: dict[str, str]) -> tuple[Callable[[dict], dict], bool]:
    """The function turning one record of `fmt` into a canonical `kind` row (raising
    RowError), and whether it still needs `kinds.validate` after it."""
    spec = FORMATS[fmt]
    read = spec.read or _canonical(kind)
    if columns:
        pairs = list(columns.items())
        inner = read

        def read(rec):
            renamed = dict(rec)
            for dst, src in pairs:
                renamed.pop(dst, None)
                if src in rec:
                    renamed[dst] = rec[src]
            return inner(renamed)

    if spec.exact and not columns:
        return read, False

    def read_and_validate(rec):
        return validate(kind, read(rec))

    return read_and_validate, True


def line_converter(fmt: str, kind: str, columns: dict[str, str]) -> Callable[[dict], bytes]:
    """Like `converter`, serializing the row as one JSON line (what import loops write)."""
    spec = FORMATS[fmt]
    if spec.line is not None and not columns:
        return spec.line
    read, _ = converter(fmt, kind, columns)
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE

    def line(rec):
        return dumps(read(rec), option=newline)

    return line


# ---- detection -----------------------------------------------------------------------------


def detect(path: Path, kind: str, columns: dict[str, str]) -> tuple[str, str]:
    """(format, how it was told) for a file or folder, from its extension and, for JSON, the
    keys of its first record."""
    if path.is_dir():
        return "text", "a folder"
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv", f"the extension {suffix}"
    if suffix in TEXT_SUFFIXES:
        return "text", f"the extension {suffix}"
    if suffix not in JSON_SUFFIXES:
        raise TllmError(
            f"cannot tell the format of {path.name} from its extension: pass --format "
            f"(kind {kind} reads {', '.join(formats_for(kind))})"
        )
    line, record = first_record(path)
    renamed = {**record, **{dst: record[src] for dst, src in columns.items() if src in record}}
    fmt = format_of_keys(set(renamed), kind, renamed)
    shown = ", ".join(list(record)[:6]) + (", ..." if len(record) > 6 else "")
    if fmt is None:
        raise TllmError(
            f"cannot tell the format of {path.name} from the keys of line {line} ({shown}): "
            f"pass --format (kind {kind} reads {', '.join(formats_for(kind))})"
        )
    how = f"the keys of line {line}: {shown}"
    if fmt == "belle":
        how += "; its instruction is a Human:/Assistant: dialogue"
    return fmt, how


def format_of_keys(keys: set, kind: str, record: dict) -> str | None:
    if "conversations" in keys:
        return "sharegpt"
    if "messages" in keys and kind != "preference" and kind != "feedback":
        return "openai"
    if {"chosen", "rejected"} <= keys:
        return "preference"
    if {"completion", "label"} <= keys:
        return "kto"
    if "instruction" in keys:
        return "belle" if chat_formats.is_belle_dialogue(record) else "alpaca"
    required = {f for f in KIND_FIELDS[kind] if f != "context"}
    if required <= keys:
        return "jsonl"
    return None
