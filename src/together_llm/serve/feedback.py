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
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from .schemas import Message


class Rating(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["rating"]
    messages: list[Message] = Field(..., min_length=1)  # the conversation the answer replied to
    completion: str = Field(..., min_length=1)  # the answer that was rated
    rating: Literal["up", "down"]
    model: Optional[str] = None


class Choice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["preference"]
    messages: list[Message] = Field(..., min_length=1)
    chosen: str = Field(..., min_length=1)  # the better of two answers
    rejected: str = Field(..., min_length=1)
    model: Optional[str] = None


class FeedbackRequest(BaseModel):
    feedback: Union[Rating, Choice] = Field(..., discriminator="type")


class FeedbackStore:
    def __init__(self, folder: Path):
        self.folder = folder
        self._lock = threading.Lock()

    def add(self, item: Rating | Choice) -> dict:
        prompt = [m.as_dict() for m in item.messages]
        row = {"prompt": prompt, "model": item.model, "time": time.time()}
        if isinstance(item, Rating):
            row.update(completion=item.completion, label=item.rating == "up")
            name = "ratings.jsonl"
        else:
            row.update(chosen=item.chosen, rejected=item.rejected)
            name = "choices.jsonl"
        line = json.dumps(row, ensure_ascii=False) + "\n"
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / name, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
        return row
