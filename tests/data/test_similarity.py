"""ROUGE-L as the rouge-score package defines it (no stemming), and the pool that finds the
most similar kept instruction."""

import random

import pytest

from together_llm.data.generate.similarity import InstructionPool, rouge_l, rouge_tokens


def test_tokens_are_lowercase_alphanumeric_runs():
    assert rouge_tokens("Hello, World! It's 2024.") == ["hello", "world", "it", "s", "2024"]
    # Like rouge-score, anything outside a-z and 0-9 separates tokens, accents included.
    assert rouge_tokens("Café   latte\n") == ["caf", "latte"]


def test_hand_computed_lcs():
    # the cat sat on the mat / the cat lay on a mat: LCS "the cat on mat" = 4 of 6 and 6
    assert rouge_l("the cat sat on the mat", "the cat lay on a mat") == pytest.approx(2 * 4 / 12)
    # order matters: LCS of "a b c d" and "d c b a" is 1 token
    assert rouge_l("a b c d", "d c b a") == pytest.approx(2 * 1 / 8)
    # different lengths: LCS "write poem" = 2; F = 2*2 / (2 + 5)
    assert rouge_l("Write poem", "Write a short poem today") == pytest.approx(4 / 7)


def test_case_punctuation_and_empty_texts():
    assert rouge_l("Write a poem!", "write a POEM") == 1.0
    assert rouge_l("", "anything") == 0.0
    assert rouge_l("?!", "...") == 0.0
    assert rouge_l("one two", "three four") == 0.0


def test_pool_agrees_with_pairwise_scores():
    rng = random.Random(7)
    words = "the a write poem story list give explain sea cat three tips short about why".split()
    texts = [" ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(300)]
    pool = InstructionPool(texts[:200])
    for query in texts[200:]:
        best, which = pool.most_similar(query)
        expected = max(rouge_l(query, kept) for kept in texts[:200])
        assert best == pytest.approx(expected)
        assert rouge_l(query, which) == pytest.approx(expected)


def test_pool_edge_cases():
    pool = InstructionPool()
    assert pool.most_similar("anything at all") == (0.0, None)
    pool.add("Write a short poem about the sea.")
    assert pool.most_similar("Completely unrelated words here")[0] == 0.0
    assert pool.most_similar("write a short poem about the sea")[0] == 1.0
    score, text = pool.most_similar("Write a short poem about the ocean.")
    assert score == pytest.approx(12 / 14) and text == "Write a short poem about the sea."
