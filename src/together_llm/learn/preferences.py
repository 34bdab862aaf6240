"""The person's preferences in the loop: A/B choices (and every correction, which is a
choice of the wanted answer over the one given) and thumbs up/down on answers.

They teach how to answer rather than what to say, so they are learned after the rows, by
preference stages going on from the sft candidate: dpo on the choices, then kto on the
ratings. A stage runs only when there are enough of its kind since the current version
(MIN_PAIRS, MIN_RATINGS; kto also needs both thumbs up and down): a preference stage on two
or three examples mostly learns their wording. What it learned is checked by the same
held-out gate as everything else; a version records the last line of each file it learned.

What a round's preferences did is measured too, as how often the model's own likelihood
sides with the person (`agreement`): per choice, whether the chosen answer gets a higher
mean log-probability per token than the rejected one; per pair of a liked and a disliked
rating, whether the liked answer does. These are the examples trained on (a choice has no
other phrasing to hold out), so the report names them so.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from ..data.feedback import CHOICES, RATINGS, usable
from ..home import Home

MIN_PAIRS = 4
MIN_RATINGS = 4


@dataclass(frozen=True)
class Preferences:
    pairs: list[dict]  # preference rows: prompt, chosen, rejected
    ratings: list[dict]  # feedback rows: prompt, completion, label
    pairs_to: int  # the last line of choices.jsonl read (0: none)
    ratings_to: int

    def stages(self) -> list[str]:
        """The preference stages this round runs after sft."""
        labels = {row["label"] for row in self.ratings}
        return (["dpo"] if len(self.pairs) >= MIN_PAIRS else []) + (
            ["kto"] if len(self.ratings) >= MIN_RATINGS and labels == {True, False} else []
        )

    def with_rows(self, pairs: list[dict], ratings: list[dict]) -> Preferences:
        """These and more pairs and ratings (from datasets marked for teaching)."""
        return Preferences(
            self.pairs + pairs, self.ratings + ratings, self.pairs_to, self.ratings_to
        )

    def trained(self) -> Preferences:
        """Only what this round's stages learn; the rest waits (its lines are not recorded
        as learned, so a later round sees them again)."""
        stages = self.stages()
        dpo, kto = "dpo" in stages, "kto" in stages
        return Preferences(
            self.pairs if dpo else [],
            self.ratings if kto else [],
            self.pairs_to if dpo else 0,
            self.ratings_to if kto else 0,
        )

    def waiting(self) -> str:
        """What is kept for a later round, in words, or ""."""
        parts = []
        if self.pairs and "dpo" not in self.stages():
            parts.append(f"{len(self.pairs)} choices (dpo needs {MIN_PAIRS})")
        if self.ratings and "kto" not in self.stages():
            parts.append(
                f"{len(self.ratings)} ratings (kto needs {MIN_RATINGS}, thumbs up and down)"
            )
        return "; ".join(parts)


def preferences_after(home: Home, choices_to: int, ratings_to: int) -> Preferences:
    """The choices after line `choices_to` of choices.jsonl and the ratings after line
    `ratings_to` of ratings.jsonl."""
    pairs = list(usable(home.feedback_dir, CHOICES, "preference", choices_to))
    ratings = list(usable(home.feedback_dir, RATINGS, "feedback", ratings_to))
    return Preferences(
        [row for _, row in pairs],
        [row for _, row in ratings],
        max((line for line, _ in pairs), default=choices_to),
        max((line for line, _ in ratings), default=ratings_to),
    )


def answer_logprob(engine, prompt: list[dict], answer: str) -> float:
    """Mean log-probability per token of `answer` after `prompt`, in the model's chat
    template (the end of turn included: a person prefers an answer that stops)."""
    asked = engine.tokenize(engine.render(prompt, add_generation_prompt=True))
    ids = engine.tokenize(engine.render([*prompt, {"role": "assistant", "content": answer}], False))
    said = [e.logprob for e in engine.prompt_logprobs(ids)[len(asked) :] if e is not None]
    return sum(said) / max(1, len(said))


def agreement(engine, preferences: Preferences) -> tuple[float | None, list[bool]]:
    """(share of comparisons where the model sides with the person, each comparison);
    None when there is nothing to compare. `engine` must score prompts (batching llama.cpp)."""
    sides = [
        answer_logprob(engine, p["prompt"], p["chosen"])
        > answer_logprob(engine, p["prompt"], p["rejected"])
        for p in preferences.pairs
    ]
    rated = [
        (r["label"], answer_logprob(engine, r["prompt"], r["completion"]))
        for r in preferences.ratings
    ]
    liked = [score for label, score in rated if label]
    disliked = [score for label, score in rated if not label]
    sides += [good > bad for good, bad in product(liked, disliked)]
    return (sum(sides) / len(sides) if sides else None), sides
