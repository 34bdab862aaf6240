"""`POST /v1/feedback`: a thumbs up/down on an answer, an A/B choice between two answers, or
a correction (the answer the person wanted instead), stored in the home's feedback log
(data/feedback.py) for `tllm improve` and `tllm data from-feedback`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..data.feedback import FeedbackStore
from ..data.kinds import RowError
from .errors import APIError
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


class Correction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["correction"]
    messages: list[Message] = Field(..., min_length=1)
    completion: str = Field(..., min_length=1)  # the answer the model gave
    correction: str = Field(..., min_length=1)  # the answer the person wanted
    model: str | None = None


class FeedbackRequest(BaseModel):
    feedback: Rating | Choice | Correction = Field(..., discriminator="type")


def store_feedback(store: FeedbackStore, item: Rating | Choice | Correction) -> dict:
    """Store a validated request; a correction that cannot be learned is a 400 naming why."""
    prompt = [m.as_dict() for m in item.messages]
    if isinstance(item, Rating):
        return store.rate(prompt, item.completion, item.rating == "up", item.model)
    if isinstance(item, Choice):
        return store.choose(prompt, item.chosen, item.rejected, item.model)
    try:
        return store.correct(prompt, item.completion, item.correction, item.model)
    except RowError as exc:
        param = "feedback.correction" if exc.reason == "identical answers" else "feedback.messages"
        raise APIError(400, f"this correction cannot be learned: {exc}", param=param) from None
