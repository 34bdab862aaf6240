"""The home's feedback log: what people said about answers, kept for training.

    feedback/ratings.jsonl      a thumbs up/down: prompt, completion, label
    feedback/choices.jsonl      the better of two answers: prompt, chosen, rejected
    feedback/corrections.jsonl  the answer the person wanted: prompt, completion, correction

Append-only JSONL, one object a line, each with the model that answered and the time. A
correction is also a choice (the wanted answer over the one given), so it is written to
choices.jsonl too: `tllm data from-feedback` turns corrections into an SFT dataset and
choices into a DPO one, and `tllm improve` learns both. Lines are written whole under a lock
and flushed, so concurrent posts never interleave. The web chat and `POST /v1/feedback`
write here (serve/); `tllm data from-feedback` and `tllm improve` read.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from .kinds import RowError, validate
from .store import numbered_lines

RATINGS, CHOICES, CORRECTIONS = "ratings.jsonl", "choices.jsonl", "corrections.jsonl"


class FeedbackStore:
    def __init__(self, folder: Path):
        self.folder = folder
        self._lock = threading.Lock()

    def rate(self, prompt: list[dict], completion: str, liked: bool, model: str | None) -> dict:
        """A thumbs up (liked) or down on `completion`, the answer to `prompt`."""
        row = {"prompt": prompt, "completion": completion, "label": liked}
        return self._append(RATINGS, {**row, "model": model, "time": time.time()})

    def choose(
        self, prompt: list[dict], chosen: str, rejected: str, model: str | None, **extra
    ) -> dict:
        """Of two answers to `prompt`, `chosen` was better than `rejected`."""
        row = {"prompt": prompt, "chosen": chosen, "rejected": rejected, "model": model}
        return self._append(CHOICES, {**row, **extra, "time": time.time()})

    def correct(self, prompt: list[dict], completion: str, correction: str, model: str | None):
        """The person wanted `correction` where the model answered `completion`: a row to
        learn, and a choice of the correction over the answer given. Both lines or neither
        is checked first (a correction identical to the answer is no correction)."""
        validate("preference", {"prompt": prompt, "chosen": correction, "rejected": completion})
        row = {"prompt": prompt, "completion": completion, "correction": correction}
        stored = self._append(CORRECTIONS, {**row, "model": model, "time": time.time()})
        self.choose(prompt, correction, completion, model, source="correction")
        return stored

    def _append(self, name: str, row: dict) -> dict:
        line = json.dumps(row, ensure_ascii=False) + "\n"
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / name, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
        return row


@dataclass(frozen=True)
class Correction:
    """One line of corrections.jsonl: the conversation, the answer given, the one wanted."""

    line: int  # its line number: later lines are newer
    prompt: tuple[tuple[str, str], ...]  # (role, content), ending with the user's turn
    given: str
    wanted: str

    @property
    def question(self) -> str:
        return self.prompt[-1][1]


def usable(folder: Path, name: str, kind: str, after: int = 0) -> Iterator[tuple[int, dict]]:
    """(line, canonical row of `kind`) for the usable lines of feedback file `name` after
    line `after`; a line that cannot be read or checked is passed over (`tllm data
    from-feedback` lists why)."""
    for number, raw in numbered_lines(folder / name):
        if number <= after:
            continue
        try:
            stored = orjson.loads(raw)
            if name == CORRECTIONS:  # checked as the choice it also is
                stored = {
                    "prompt": stored.get("prompt"),
                    "chosen": stored.get("correction"),
                    "rejected": stored.get("completion"),
                }
            row = validate(kind, stored)
        except (orjson.JSONDecodeError, RowError, AttributeError):
            continue
        yield number, row


def corrections(folder: Path, after: int = 0) -> Iterator[Correction]:
    """The usable corrections in `folder`, those after line `after`."""
    for number, row in usable(folder, CORRECTIONS, "preference", after):
        prompt = tuple((m["role"], m["content"]) for m in row["prompt"])
        yield Correction(number, prompt, row["rejected"], row["chosen"])
