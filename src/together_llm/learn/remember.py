"""`tllm remember`: a memory stored with the questions it will be taught and tested with."""

from __future__ import annotations

from collections.abc import Callable

from ..home import Home
from .memories import Memory, MemoryStore, check_text
from .teacher import Ask, memory_questions, open_ask


def remember(
    home: Home,
    text: str,
    teacher: str | None = "default",
    api_key: str | None = None,
    ask: Ask | None = None,
    source: str = "teacher",
    report: Callable[[str], None] = lambda message: None,
) -> Memory:
    """Store `text` as a memory. Its questions come from the patterns and, unless `teacher`
    is None, from the teacher (`ask`, when the caller holds an engine already, else the
    model or endpoint `teacher` names)."""
    text = check_text(text)
    close = None
    if ask is None and teacher is not None:
        report(f"asking the teacher ({teacher}) for more questions ...")
        ask, source, close = open_ask(home, teacher, api_key)
    try:
        questions, dropped = memory_questions(text, ask, source)
    finally:
        if close is not None:
            close()
    return MemoryStore(home).add(text, questions, dropped)
