"""The person's corrections (feedback/corrections.jsonl: the answer they wanted where the
assistant said something else) in the loop: which are new to a version, and how each is
tested.

A correction has one question, the one it corrected, and no other phrasing to hold out, so
it is tested on that question, in its own conversation: the answer must hold what the
correction says that the answer given did not (its key content). The current version gave
the wrong answer there, so a candidate that learned the correction scores higher; later
versions keep being asked it, as the regression set.
"""

from __future__ import annotations

from ..data.feedback import Correction, corrections
from ..home import Home
from .questions import content_words, key_content
from .scoring import Question


def corrections_by_age(home: Home, learned_to: int) -> tuple[list[Correction], list[Correction]]:
    """(new, earlier): corrections after line `learned_to` of the log, and those up to it."""
    everything = list(corrections(home.feedback_dir))
    return (
        [c for c in everything if c.line > learned_to],
        [c for c in everything if c.line <= learned_to],
    )


def question_of(correction: Correction) -> Question:
    given = set(content_words(correction.given))
    keys = key_content(correction.wanted, correction.question)
    fixed = [k for k in keys if k.lower() not in given] or keys
    if not fixed:  # no content words ("No."): the answer must say the correction itself
        return Question(
            correction.question,
            word=correction.wanted.strip(" .!?"),
            turns=correction.prompt,
            correction=correction.line,
        )
    return Question(
        correction.question, tuple(fixed), turns=correction.prompt, correction=correction.line
    )
