"""Prompt perturbations for robustness, in the spirit of HELM's: the same items asked with
small, meaning-preserving noise (typos, casing, extra whitespace); a robust assistant scores
about the same on them.

Each perturbation is a pure function `(text, rng) -> text` of a `random.Random`, so the same
seed perturbs the same items the same way on every run and for every model compared. Only
prompts are perturbed, never reference answers.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from ..errors import TllmError

Perturbation = Callable[[str, random.Random], str]


def typos(text: str, rng: random.Random, rate: float = 0.05) -> str:
    """Typing slips: each letter, with probability `rate`, is swapped with the next letter
    ("teh") or dropped ("th"), half and half."""
    chars, out, i = list(text), [], 0
    while i < len(chars):
        ch = chars[i]
        if ch.isalpha() and rng.random() < rate:
            if rng.random() < 0.5 and i + 1 < len(chars) and chars[i + 1].isalpha():
                out += [chars[i + 1], ch]
                i += 2
                continue
            i += 1  # dropped (or a swap with nothing to swap with: a drop too)
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def lowercase(text: str, rng: random.Random) -> str:
    """The whole prompt in lower case (HELM's lowercase perturbation)."""
    return text.lower()


def flip_case(text: str, rng: random.Random, rate: float = 0.1) -> str:
    """Each letter's case flipped with probability `rate` ("wHat is")."""
    return "".join(ch.swapcase() if ch.isalpha() and rng.random() < rate else ch for ch in text)


def extra_whitespace(text: str, rng: random.Random, rate: float = 0.2, most: int = 3) -> str:
    """Each run of spaces, with probability `rate`, becomes 2 to `most` + 1 spaces (HELM's
    space perturbation); newlines are kept as they are."""
    return re.sub(
        r" +", lambda m: " " * rng.randint(2, most + 1) if rng.random() < rate else m.group(0), text
    )


PERTURBATIONS: dict[str, Perturbation] = {
    "typos": typos,
    "lowercase": lowercase,
    "casing": flip_case,
    "whitespace": extra_whitespace,
}


def _functions(names: Sequence[str]) -> list[Perturbation]:
    unknown = [name for name in names if name not in PERTURBATIONS]
    if unknown or not names:
        raise TllmError(
            f"unknown perturbation {', '.join(unknown) or '(none given)'}: choose "
            f"from {', '.join(PERTURBATIONS)}"
        )
    return [PERTURBATIONS[name] for name in names]


def perturb(text: str, names: Sequence[str], rng: random.Random) -> str:
    """`text` through each named perturbation in turn."""
    for function in _functions(names):
        text = function(text, rng)
    return text


def _rng(seed: int, index: int) -> random.Random:
    # One generator per item: an item's perturbation does not depend on the items before it,
    # so a subset or a reordering of the items perturbs each one the same way.
    return random.Random(f"{seed}:{index}")


def perturb_texts(texts: Sequence[str], names: Sequence[str], seed: int = 0) -> list[str]:
    """Each text perturbed with its own generator seeded from `seed` and its position."""
    return [perturb(text, names, _rng(seed, i)) for i, text in enumerate(texts)]


def perturb_rows(rows: Sequence[dict], names: Sequence[str], seed: int = 0) -> list[dict]:
    """Copies of canonical rows with their prompt perturbed: a chat row's user turns, a
    seq2seq row's source, a text row's text, a multiple-choice row's question. Answers and
    references are left alone."""
    _functions(names)  # refuse unknown names before touching anything
    out = []
    for i, row in enumerate(rows):
        rng = _rng(seed, i)
        row = dict(row)
        if "messages" in row:
            row["messages"] = [
                {**m, "content": perturb(m["content"], names, rng)}
                if m.get("role") == "user"
                else dict(m)
                for m in row["messages"]
            ]
        elif "prompt" in row and isinstance(row["prompt"], list):  # preference / feedback rows
            row["prompt"] = [
                {**m, "content": perturb(m["content"], names, rng)}
                if m.get("role") == "user"
                else dict(m)
                for m in row["prompt"]
            ]
        else:
            field = next(
                (f for f in ("question", "source", "text") if isinstance(row.get(f), str)), None
            )
            if field is None:
                raise TllmError(
                    f"row {i} has no prompt to perturb (messages, question, source or text)"
                )
            row[field] = perturb(row[field], names, rng)
        out.append(row)
    return out
