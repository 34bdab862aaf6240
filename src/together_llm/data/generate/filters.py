"""The Self-Instruct paper's filters: which new instructions and instances are dropped, and
why (each reason is a short name the card counts).

An instruction is dropped when it starts with junk, is too short or too long, asks for
what a text model cannot serve (images, files, maps...), repeats a kept one, or is too
close to one (ROUGE-L >= 0.7). An instance is dropped when its output is empty, repeats
its input or a seed example, repeats an earlier input of the task, or is too long.
"""

from __future__ import annotations

import re
import string

from .similarity import InstructionPool

BLOCKED_WORDS = (
    "image",
    "images",
    "graph",
    "graphs",
    "picture",
    "pictures",
    "file",
    "files",
    "map",
    "maps",
    "draw",
    "plot",
    "go to",
)
_BLOCKED = re.compile(
    r"\b(?:" + "|".join(w.replace(" ", r"\s+") for w in BLOCKED_WORDS) + r")\b", re.I
)
MIN_WORDS, MAX_WORDS = 3, 150  # instruction length bounds, as in the paper's code
MAX_INSTANCE_WORDS = 400  # input + output
SIMILARITY_LIMIT = 0.7


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


def instruction_problem(instruction: str, pool: InstructionPool, seen: set[str]) -> str | None:
    """Why a new instruction is dropped (a filter name), or None to keep it. `seen` holds
    the normalized text of every kept instruction, `pool` the same for ROUGE-L."""
    first = instruction[:1]
    if not first or first in string.punctuation or not first.isascii() or not first.isalnum():
        return "junk"
    words = len(instruction.split())
    if words < MIN_WORDS:
        return "too short"
    if words > MAX_WORDS:
        return "too long"
    if _BLOCKED.search(instruction):
        return "keyword"
    if normalize(instruction) in seen:
        return "duplicate"
    if pool.most_similar(instruction)[0] >= SIMILARITY_LIMIT:
        return "similar"
    return None


def instance_problem(
    instance: dict, earlier: list[dict], shown: frozenset = frozenset()
) -> str | None:
    """Why an instance is dropped, or None; `earlier` are the task's instances kept so far,
    `shown` the normalized outputs of the seed examples (a weak teacher copies them)."""
    given, output = instance["input"], instance["output"]
    if not output.strip():
        return "empty output"
    if normalize(output) == normalize(given):
        return "output is input"
    if normalize(output) in shown and len(output.split()) > 3:  # short labels repeat rightly
        return "copied example"
    if any(normalize(given) == normalize(e["input"]) for e in earlier):
        return "duplicate instance"
    if len(given.split()) + len(output.split()) > MAX_INSTANCE_WORDS:
        return "instance too long"
    return None


def describe_drops(counts: dict) -> str:
    """'similar 4, too short 2': what a filter level dropped, most first."""
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return ", ".join(f"{reason} {n}" for reason, n in ordered) or "nothing"
