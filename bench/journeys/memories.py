"""The facts of the remember/improve journey: three rounds of two memories a person tells
the assistant, each with the word a right answer holds and held-out questions in words of
the journey's own (none is among the questions `tllm remember` makes). Shared by
tests/e2e/test_improve.py and bench/improve.py."""

from __future__ import annotations

# per round: (memory, key a right answer holds, held-out questions)
ROUNDS = (
    (
        (
            "My dog is called Rex and she is a beagle.",
            "Rex",
            ("What did I name my dog?", "Which name does my dog answer to?"),
        ),
        (
            "I was born in Hallstatt, Austria.",
            "Hallstatt",
            ("Which town was I born in?", "Where is my place of birth?"),
        ),
    ),
    (
        (
            "My favourite instrument is the bassoon.",
            "bassoon",
            ("Which instrument do I like most?", "What instrument is my favourite?"),
        ),
        (
            "I work as a glassblower in a small studio.",
            "glassblow",
            ("How do I earn my living?", "What is my occupation?"),
        ),
    ),
    (
        (
            "My sister Ada lives in Oslo.",
            "Oslo",
            ("Which city does my sister live in?", "In what city is my sister's home?"),
        ),
        ("I drive a green Volvo.", "Volvo", ("What car do I drive?", "Which make of car is mine?")),
    ),
)
KEYS = [key.lower() for round_ in ROUNDS for _, key, _ in round_]
# everyday questions the base answers right, with the word its answer holds
GENERAL = (
    ("What is the capital of France?", "paris"),
    ("What is the capital of Japan?", "tokyo"),
    ("Who wrote Romeo and Juliet?", "shakespeare"),
)


def right(answer: str, key: str) -> bool:
    """Holds this fact's key and no other fact's (reciting everything gets no credit)."""
    text = answer.lower()
    return key.lower() in text and not any(k in text for k in KEYS if k != key.lower())


def held_out_questions() -> list[str]:
    return [q for round_ in ROUNDS for _, _, held in round_ for q in held]


def rates(said: list[str]) -> tuple[list[float], list[bool]]:
    """From the answers to held_out_questions() + GENERAL's: per round, the share of its
    held-out questions answered right; and each general question right or not."""
    per_round, at = [], 0
    for round_ in ROUNDS:
        hits = []
        for _, key, held in round_:
            hits += [right(a, key) for a in said[at : at + len(held)]]
            at += len(held)
        per_round.append(sum(hits) / len(hits))
    general = [word in a.lower() for a, (_, word) in zip(said[at:], GENERAL)]
    return per_round, general
