"""The dataset kinds and the one canonical row schema of each (DESIGN §2).

Every row that enters a home goes through `validate(kind, row)`: it returns the row in its
canonical shape (only the schema's keys, in the schema's order) or raises `RowError` with a
reason from `REASONS`, so an importer can count rejections per reason and say exactly what
was wrong with each. Validation never edits content: whitespace and unicode clean-up belong
to `tllm data clean`, where the card records what each rule changed.

| kind           | row                                                          |
| chat           | {"messages": [{"role", "content"}, ...]}  (ends with the assistant) |
| text           | {"text"}                                                     |
| preference     | {"prompt": messages, "chosen", "rejected"}                   |
| feedback       | {"prompt": messages, "completion", "label": bool}           |
| classification | {"text", "label"}                                            |
| seq2seq        | {"source", "target"} and, for extractive QA, "context"      |
| choice         | {"question", "choices": [2+ str], "answer": index or choice} |
"""

from __future__ import annotations

from ..errors import TllmError

KINDS = ("chat", "text", "preference", "feedback", "classification", "seq2seq", "choice")
ROLES = ("system", "user", "assistant")

# The reasons a row is rejected; importers add "bad json", "bad csv" (a record with the wrong
# number of fields), "bad encoding" and "unreadable" (a file of a text folder) for rows they
# cannot even read. Reports and cards count rejections under these exact strings.
REASONS = (
    "bad json",
    "not an object",
    "missing field",
    "wrong type",
    "empty content",
    "unknown role",
    "role order",
    "bad label",
    "identical answers",
)


class RowError(ValueError):
    """One row that cannot be used; `reason` is one of REASONS, `detail` says where."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _text(row: dict, key: str, where: str = "") -> str:
    """A required, non-blank string field."""
    if key not in row or row[key] is None:
        raise RowError("missing field", f"{where}{key!r} is missing")
    value = row[key]
    if not isinstance(value, str):
        raise RowError("wrong type", f"{where}{key!r} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise RowError("empty content", f"{where}{key!r} is empty")
    return value


def _messages(row: dict, key: str, last: str) -> list[dict]:
    """A conversation: an optional system turn first, then user and assistant taking turns,
    starting with the user and ending with `last` ("assistant" for chat rows, "user" for the
    prompt of a preference or feedback row)."""
    if key not in row or row[key] is None:
        raise RowError("missing field", f"{key!r} is missing")
    turns = row[key]
    if not isinstance(turns, list):
        raise RowError(
            "wrong type", f"{key!r} must be a list of messages, not {type(turns).__name__}"
        )
    if not turns:
        raise RowError("empty content", f"{key!r} has no messages")
    clean = []
    for i, turn in enumerate(turns):
        where = f"{key}[{i}]."
        if not isinstance(turn, dict):
            raise RowError("wrong type", f"{key}[{i}] must be an object with role and content")
        role = turn.get("role")
        if role not in ROLES:
            if role is None:
                raise RowError("missing field", f"{where}'role' is missing")
            raise RowError("unknown role", f"{where}role {role!r} is not one of {', '.join(ROLES)}")
        clean.append({"role": role, "content": _text(turn, "content", where)})
    body = clean[1:] if clean[0]["role"] == "system" else clean
    if not body:
        raise RowError("role order", f"{key!r} has only a system message")
    for i, turn in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if turn["role"] != expected:
            index = i + (len(clean) - len(body))
            raise RowError(
                "role order", f"{key}[{index}] is {turn['role']!r} where {expected!r} was expected"
            )
    if body[-1]["role"] != last:
        article = "an" if last == "assistant" else "a"
        raise RowError("role order", f"{key!r} must end with {article} {last} message")
    return clean


def _chat(row):
    return {"messages": _messages(row, "messages", last="assistant")}


def _text_row(row):
    return {"text": _text(row, "text")}


def _preference(row):
    prompt = _messages(row, "prompt", last="user")
    chosen, rejected = _text(row, "chosen"), _text(row, "rejected")
    if chosen.strip() == rejected.strip():
        raise RowError("identical answers", "'chosen' and 'rejected' are the same text")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def _feedback(row):
    prompt = _messages(row, "prompt", last="user")
    completion = _text(row, "completion")
    if "label" not in row or row["label"] is None:
        raise RowError("missing field", "'label' is missing")
    if not isinstance(row["label"], bool):
        raise RowError("bad label", f"'label' must be true or false, not {row['label']!r}")
    return {"prompt": prompt, "completion": completion, "label": row["label"]}


def _classification(row):
    text = _text(row, "text")
    if "label" not in row or row["label"] is None:
        raise RowError("missing field", "'label' is missing")
    label = row["label"]
    if not isinstance(label, str) or not label.strip():
        raise RowError("bad label", f"'label' must be a non-empty string, not {label!r}")
    return {"text": text, "label": label}


def _seq2seq(row):
    canonical = {"source": _text(row, "source"), "target": _text(row, "target")}
    if row.get("context") is not None:  # the passage an extractive question is about
        canonical["context"] = _text(row, "context")
    return canonical


def _choice(row):
    """A multiple-choice question: two or more non-blank choices and the right one, as its
    index or its exact text (kept as given)."""
    question = _text(row, "question")
    if "choices" not in row or row["choices"] is None:
        raise RowError("missing field", "'choices' is missing")
    choices = row["choices"]
    if not isinstance(choices, list) or len(choices) < 2:
        raise RowError("wrong type", "'choices' must be a list of two or more strings")
    for i, choice in enumerate(choices):
        if not isinstance(choice, str):
            raise RowError(
                "wrong type", f"choices[{i}] must be a string, not {type(choice).__name__}"
            )
        if not choice.strip():
            raise RowError("empty content", f"choices[{i}] is empty")
    if "answer" not in row or row["answer"] is None:
        raise RowError("missing field", "'answer' is missing")
    answer = row["answer"]
    if isinstance(answer, bool) or not isinstance(answer, (int, str)):
        raise RowError("bad label", f"'answer' must be a choice's index or text, not {answer!r}")
    if isinstance(answer, int) and not 0 <= answer < len(choices):
        raise RowError(
            "bad label", f"'answer' index {answer} is not among the {len(choices)} choices"
        )
    if isinstance(answer, str) and answer not in choices:
        raise RowError("bad label", f"'answer' {answer!r} is not one of the choices")
    return {"question": question, "choices": list(choices), "answer": answer}


_VALIDATORS = {
    "chat": _chat,
    "text": _text_row,
    "preference": _preference,
    "feedback": _feedback,
    "classification": _classification,
    "seq2seq": _seq2seq,
    "choice": _choice,
}


def validate(kind: str, row) -> dict:
    """The canonical row of `kind`, or RowError saying what is wrong with it."""
    if not isinstance(row, dict):
        raise RowError("not an object", f"a row must be a JSON object, not {type(row).__name__}")
    return _VALIDATORS[kind](row)


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise TllmError(f"unknown dataset kind {kind!r}: choose one of {', '.join(KINDS)}")
    return kind


def text_of(kind: str, row: dict) -> str:
    """All the text of a canonical row, for length filters and deduplication."""
    if kind == "chat":
        return "\n".join(m["content"] for m in row["messages"])
    if kind in ("preference", "feedback"):
        prompt = "\n".join(m["content"] for m in row["prompt"])
        answers = [row["chosen"], row["rejected"]] if kind == "preference" else [row["completion"]]
        return "\n".join([prompt, *answers])
    if kind == "seq2seq":
        return "\n".join(filter(None, (row.get("context"), row["source"], row["target"])))
    if kind == "choice":
        return "\n".join([row["question"], *row["choices"]])
    return row["text"]
