"""Datasets a person marks for teaching (`tllm data teach NAME`): `tllm improve` learns each
one marked since the current version, or changed since (its fingerprint), with the rest.

    chat        its rows join the sft mix beside memories and corrections
    preference  its pairs join the choices (dpo)
    feedback    its rows join the ratings (kto)

Of a chat dataset, the eval split is held out (`tllm data split`), or without one every
HOLD_OUT_EVERYth row; the held-out rows test the candidate as what the model makes of the
reference answers (`likelihood`): a chat answer has no key word to look for. Earlier
taught datasets are replayed and tested the same way, as a regression set. Marking stops
with `tllm data teach --stop NAME`; that is no unlearning: the versions that learned the
dataset keep what they learned, and later rounds stop replaying it.

The marks live in `learn/teach.json`, written whole and renamed into place.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

from ..data.store import open_dataset
from ..errors import TllmError
from ..home import Home
from .mix import Row
from .preferences import answer_logprob

STAGE_OF_KIND = {"chat": "sft", "preference": "dpo", "feedback": "kto"}
HOLD_OUT_EVERY = 5
HELD_OUT_AT_MOST = 20  # rows of one dataset asked each round (each costs two model passes)


@dataclass(frozen=True)
class TaughtData:
    name: str
    kind: str
    fingerprint: str
    rows: list[dict]  # what is trained on, canonical rows of its kind
    held_out: list[dict]  # chat datasets: what tests it

    def train_rows(self) -> list[Row]:
        """A chat dataset's rows as the mix's (conversation, answer) rows."""
        return [_row(r) for r in self.rows] if self.kind == "chat" else []


def _row(row: dict) -> Row:
    *asked, last = row["messages"]
    return Row(tuple((m["role"], m["content"]) for m in asked), last["content"])


class TeachMarks:
    def __init__(self, home: Home):
        self.home = home
        self.path = home.path / "learn" / "teach.json"

    def names(self) -> list[str]:
        if not self.path.is_file():
            return []
        try:
            return list(json.loads(self.path.read_text(encoding="utf-8"))["datasets"])
        except (ValueError, KeyError, TypeError):
            raise TllmError(f"{self.path} is damaged; mark the datasets again") from None

    def mark(self, name: str) -> str:
        """Mark dataset `name`; returns its kind. Only kinds the loop can learn."""
        kind = open_dataset(self.home, name).kind
        if kind not in STAGE_OF_KIND:
            raise TllmError(
                f"dataset {name!r} is of kind {kind}; tllm improve teaches "
                f"{', '.join(STAGE_OF_KIND)} datasets (train others with tllm train)"
            )
        names = self.names()
        if name not in names:
            self._write([*names, name])
        return kind

    def unmark(self, name: str) -> None:
        names = self.names()
        if name not in names:
            raise TllmError(
                f"dataset {name!r} is not marked for teaching; marked: {', '.join(names) or 'none'}"
            )
        self._write([n for n in names if n != name])

    def _write(self, names: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.path.with_name(f".teach-{os.getpid()}.json")
        staging.write_text(json.dumps({"datasets": names}, indent=2) + "\n", encoding="utf-8")
        staging.replace(self.path)


def marked_data(home: Home) -> list[TaughtData]:
    """Every marked dataset, read (a mark whose dataset was deleted is a clear error)."""
    found = []
    for name in TeachMarks(home).names():
        try:
            dataset = open_dataset(home, name)
        except TllmError as error:
            raise TllmError(
                f"{error}; it is marked for teaching: `tllm data teach --stop {name}`"
            ) from None
        if dataset.has_splits:
            rows, held = list(dataset.rows("train")), list(dataset.rows("eval"))
        else:
            every = list(dataset.rows())
            chat = dataset.kind == "chat" and len(every) >= HOLD_OUT_EVERY
            held = [r for i, r in enumerate(every) if chat and i % HOLD_OUT_EVERY == 4]
            rows = [r for i, r in enumerate(every) if not (chat and i % HOLD_OUT_EVERY == 4)]
        fingerprint = str(dataset.card.get("fingerprint", ""))
        found.append(TaughtData(name, dataset.kind, fingerprint, rows, held[:HELD_OUT_AT_MOST]))
    return found


def likelihood(engine, rows: list[dict]) -> float | None:
    """How likely the model finds held-out chat rows' answers: the geometric mean of the
    per-token probability (1.0: it would say exactly them). None without rows."""
    if not rows:
        return None
    means = [answer_logprob(engine, r["messages"][:-1], r["messages"][-1]["content"]) for r in rows]
    return math.exp(sum(means) / len(means))
