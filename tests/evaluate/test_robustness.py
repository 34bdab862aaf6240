"""Prompt perturbations: deterministic for a seed, meaning-preserving, prompts only."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from together_llm.errors import TllmError
from together_llm.evaluate.robustness import (
    extra_whitespace,
    flip_case,
    lowercase,
    perturb_rows,
    perturb_texts,
    typos,
)

TEXT = "What does the cat say when it sees the moon over the quiet village at night?"


def test_same_seed_same_perturbation_other_seed_another():
    names = ["typos", "casing", "whitespace"]
    first = perturb_texts([TEXT] * 3, names, seed=1)
    assert first == perturb_texts([TEXT] * 3, names, seed=1)
    assert first != perturb_texts([TEXT] * 3, names, seed=2)
    # Each item has its own generator: items differ, and an item does not depend on the
    # items after it.
    assert first[0] != first[1]
    assert perturb_texts([TEXT] * 2, names, seed=1) == first[:2]


def test_typos_swap_or_drop_letters_at_about_the_rate():
    text = " ".join(["evaluation"] * 100)  # 1000 letters
    assert typos(text, random.Random(0), rate=0.0) == text
    noisy = typos(text, random.Random(0), rate=0.1)
    # Swaps and drops only: no letter appears that was not there, none more often.
    assert not Counter(noisy) - Counter(text)
    assert noisy.count(" ") == text.count(" ")
    changed = sum(word != "evaluation" for word in noisy.split())
    assert (
        30 <= changed <= 90
    )  # a word stays whole with P = 0.9 ** 10, about 35%: ~65 of 100 change


def test_casing_and_whitespace_keep_the_words():
    assert lowercase("Hello World", random.Random(0)) == "hello world"
    assert flip_case("Hello World", random.Random(0), rate=1.0) == "hELLO wORLD"
    spaced = extra_whitespace(TEXT, random.Random(0), rate=1.0)
    assert spaced.split() == TEXT.split() and "  " in spaced and len(spaced) > len(TEXT)
    assert extra_whitespace("a\nb c", random.Random(0), rate=1.0).startswith("a\nb ")


def test_rows_perturb_prompts_but_not_answers():
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Be Brief."},
                {"role": "user", "content": TEXT},
                {"role": "assistant", "content": "The Cat Says Meow."},
            ]
        },
        {"question": "Which Is Bigger?", "choices": ["A Cat", "A Whale"], "answer": 1},
        {"source": "Translate This", "target": "Traduis Ceci"},
    ]
    out = perturb_rows(rows, ["lowercase"], seed=0)
    assert out[0]["messages"][1]["content"] == TEXT.lower()
    assert out[0]["messages"][0]["content"] == "Be Brief."
    assert out[0]["messages"][2]["content"] == "The Cat Says Meow."
    assert out[1] == {"question": "which is bigger?", "choices": ["A Cat", "A Whale"], "answer": 1}
    assert out[2] == {"source": "translate this", "target": "Traduis Ceci"}
    assert rows[0]["messages"][1]["content"] == TEXT  # the originals are untouched


def test_unknown_perturbations_and_rows_are_refused():
    with pytest.raises(TllmError, match="unknown perturbation shout"):
        perturb_texts([TEXT], ["shout"])
    with pytest.raises(TllmError, match="no prompt to perturb"):
        perturb_rows([{"label": "x"}], ["typos"])
