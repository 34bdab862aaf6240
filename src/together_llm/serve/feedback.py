"""Feedback from people: thumbs up/down on an answer, and A/B choices between two answers.

Stored in the home's `feedback/` as append-only JSONL, one object a line, so later stages
turn ratings into KTO data (`ratings.jsonl`: prompt, completion, label) and choices into
DPO data (`choices.jsonl`: prompt, chosen, rejected). Lines are written whole under a
lock and flushed, so concurrent posts never interleave.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .schemas import Message


class Rating(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["rating"]
    messages: list[Message] = Field(..., min_length=1)  # the conversation the answer replied to
    completion: str = Field(..., min_length=1)  # the answer that was rated
    rating: Literal["up", "down"]
    model: str | None = None


class Choice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["preference"]
    messages: list[Message] = Field(..., min_length=1)
    chosen: str = Field(..., min_length=1)  # the better of two answers
    rejected: str = Field(..., min_length=1)
    model: str | None = None


class FeedbackRequest(BaseModel):
    feedback: Rating | Choice = Field(..., discriminator="type")


class FeedbackStore:
    def __init__(self, folder: Path):
        self.folder = folder
        self._lock = threading.Lock()

    def add(self, item: Rating | Choice) -> dict:
        """Store a validated API request."""
        prompt = [m.as_dict() for m in item.messages]
        if isinstance(item, Rating):
            return self.rate(prompt, item.completion, item.rating == "up", item.model)
        return self.choose(prompt, item.chosen, item.rejected, item.model)

    def rate(self, prompt: list[dict], completion: str, liked: bool, model: str | None) -> dict:
        """A thumbs up (liked) or down on `completion`, the answer to `prompt`."""
        return self._append(
            "ratings.jsonl",
            {
                "prompt": prompt,
                "completion": completion,
                "label": liked,
                "model": model,
                "time": time.time(),
            },
        )

    def choose(self, prompt: list[dict], chosen: str, rejected: str, model: str | None) -> dict:
        """Of two answers to `prompt`, `chosen` was better than `rejected`."""
        return self._append(
            "choices.jsonl",
            {
                "prompt": prompt,
                "chosen": chosen,
                "rejected": rejected,
                "model": model,
                "time": time.time(),
            },
        )

    def _append(self, name: str, row: dict) -> dict:
        line = json.dumps(row, ensure_ascii=False) + "\n"
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / name, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
        return row
