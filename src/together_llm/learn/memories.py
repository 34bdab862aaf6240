"""The memories a person gave the assistant (`tllm remember`, the web chat, `POST
/v1/memories`), each with the rows it is taught by and the questions it is tested on.

One JSON file a memory, `learn/memories/<id>.json`, written whole beside its place and
renamed into it. Ids count up from 1 and are never given twice (`learn/memories/next_id`),
so a forgotten memory's id cannot come back as another memory. Forgetting removes the file:
its rows are gone from every later training mix, and the versions that knew it record its
id, so `tllm improve` knows it has something to unlearn.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import TllmError
from ..home import Home
from .questions import key_content, second_person

MAX_CHARS = 2000  # a memory is a fact or a few, not a document (knowledge/ takes those)


@dataclass(frozen=True)
class Probe:
    """A question the memory answers, and what an answer must hold to answer with it."""

    question: str
    keys: tuple[str, ...]
    source: str = "pattern"  # pattern, or the teacher that wrote it

    @classmethod
    def of(cls, memory: str, question: str, source: str = "pattern") -> Probe:
        return cls(question, tuple(key_content(memory, question)), source)


@dataclass(frozen=True)
class Memory:
    id: int
    text: str
    answer: str  # the memory said back to the person: what the assistant learns to say
    train: tuple[Probe, ...]  # the questions it is taught with
    held_out: tuple[Probe, ...]  # the questions it is tested on, never taught
    created: str = ""
    dropped: dict[str, int] = field(default_factory=dict)  # teacher questions dropped, by why

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Memory:
        def probes(key):
            return tuple(
                Probe(p["question"], tuple(p["keys"]), p.get("source", "pattern"))
                for p in data.get(key, [])
            )

        return cls(
            id=int(data["id"]),
            text=str(data["text"]),
            answer=str(data["answer"]),
            train=probes("train"),
            held_out=probes("held_out"),
            created=str(data.get("created", "")),
            dropped=dict(data.get("dropped", {})),
        )


def check_text(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise TllmError("a memory needs some text: what should the assistant remember?")
    if len(text) > MAX_CHARS:
        raise TllmError(
            f"a memory holds at most {MAX_CHARS} characters ({len(text)} given); put "
            "documents into the knowledge base instead (tllm knowledge add)"
        )
    return text


def split_questions(text: str, questions: list[tuple[str, str]]) -> tuple[list, list]:
    """(taught, held out): every third question is held out (at least one when there are
    two or more), so the test asks in words the training never used."""
    probes = [Probe.of(text, q, source) for q, source in questions]
    if len(probes) < 2:
        return probes, []
    held = [p for i, p in enumerate(probes) if i % 3 == 2] or [probes[-1]]
    return [p for p in probes if p not in held], held


class MemoryStore:
    """The memories of one home."""

    def __init__(self, home: Home):
        self.folder = home.path / "learn" / "memories"

    def _path(self, memory_id: int) -> Path:
        return self.folder / f"{int(memory_id)}.json"

    def _next_id(self) -> int:
        counter = self.folder / "next_id"
        taken = [int(p.stem) for p in self.folder.glob("*.json") if p.stem.isdigit()]
        try:
            stored = int(counter.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            stored = 1
        return max([stored, *(i + 1 for i in taken)])

    def add(self, text: str, questions: list[tuple[str, str]], dropped: dict[str, int]) -> Memory:
        """Store a memory taught by `questions` ((question, source) pairs)."""
        text = check_text(text)
        if not questions:
            raise TllmError(f"no question could be made that {text!r} answers")
        self.folder.mkdir(parents=True, exist_ok=True)
        memory_id = self._next_id()
        train, held_out = split_questions(text, questions)
        memory = Memory(
            id=memory_id,
            text=text,
            answer=second_person(text),
            train=tuple(train),
            held_out=tuple(held_out),
            created=time.strftime("%Y-%m-%dT%H:%M:%S"),
            dropped=dropped,
        )
        _write_json(self._path(memory_id), memory.to_dict())
        _write_text(self.folder / "next_id", f"{memory_id + 1}\n")
        return memory

    def all(self) -> list[Memory]:
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.glob("*.json") if p.stem.isdigit()]
        return [self._read(p) for p in sorted(found, key=lambda p: int(p.stem))]

    def get(self, memory_id: int | str) -> Memory:
        path = self._path(_as_id(memory_id))
        if not path.is_file():
            known = ", ".join(str(m.id) for m in self.all()) or "none yet"
            raise TllmError(f"no memory {memory_id}; memories: {known}")
        return self._read(path)

    def exists(self, memory_id: int | str) -> bool:
        return self._path(_as_id(memory_id)).is_file()

    def forget(self, memory_id: int | str) -> Memory:
        memory = self.get(memory_id)
        self._path(memory.id).unlink()
        return memory

    def _read(self, path: Path) -> Memory:
        try:
            return Memory.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as error:
            raise TllmError(f"memory file {path} is damaged: {error}") from None


def _as_id(memory_id: int | str) -> int:
    try:
        return int(str(memory_id).lstrip("#"))
    except ValueError:
        raise TllmError(f"a memory id is a number, not {memory_id!r}") from None


def _write_json(path: Path, data: dict) -> None:
    _write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
