"""Text metrics against values worked out by hand on short strings."""

from __future__ import annotations

import pytest

from together_llm.errors import TllmError
from together_llm.evaluate.text_metrics import (
    bleu,
    chrf,
    exact_match,
    normalize_answer,
    rouge,
    token_f1,
)


def test_rouge_l_follows_the_longest_common_subsequence():
    # Same six words in another order: every unigram matches (ROUGE-1 = 100), but the longest
    # common subsequence is three words ("the cat sat" or "on the mat"): P = R = F = 3/6.
    scores = rouge(["on the mat the cat sat"], ["the cat sat on the mat"])
    assert scores["rouge1"] == pytest.approx(100.0)
    assert scores["rougeL"] == pytest.approx(50.0)


def test_rouge_precision_and_recall_differ():
    # Prediction 7 words, reference 5: LCS "the cat on the mat" = 5, P = 5/7, R = 1, F = 10/12.
    # Bigrams: 6 in the prediction, 4 in the reference, 2 shared ("the cat", "on the"):
    # P = 1/3, R = 1/2, F = 0.4.
    scores = rouge(["the cat sat on the red mat"], ["the cat on the mat"])
    assert scores["rougeL"] == pytest.approx(100 * 10 / 12)
    assert scores["rouge2"] == pytest.approx(40.0)
    assert scores["tokenizer"] == "rouge-score"


def test_rouge_stems_and_keeps_the_best_reference():
    assert rouge(["cats running"], ["cat runs"])["rouge1"] == pytest.approx(100.0)
    # Two items: the first matches its second reference exactly, the second shares nothing.
    scores = rouge(["good morning", "hello"], [["bad night", "good morning"], "farewell"])
    assert scores["rougeL"] == pytest.approx(50.0)


def test_rouge_reads_non_english_text():
    # Chinese has no spaces: one token per character; 我 and 爱 are shared out of four each.
    scores = rouge(["我爱北京"], ["我爱上海"])
    assert scores["tokenizer"] == "unicode"
    assert scores["rouge1"] == pytest.approx(50.0)
    assert scores["rougeL"] == pytest.approx(50.0)


def test_bleu_and_chrf():
    sentences = ["the quick brown fox jumps over the lazy dog", "a stitch in time saves nine"]
    assert bleu(sentences, sentences) == pytest.approx(100.0)
    assert chrf(sentences, sentences) == pytest.approx(100.0)
    assert bleu(["xyz qrs"], ["the quick brown fox"]) == pytest.approx(0.0)
    assert chrf(["xyz"], ["bad cafe"]) == pytest.approx(0.0, abs=1e-6)
    # Any one of several references counts; items may have different numbers of them.
    assert bleu(
        sentences, [["something else entirely here", sentences[0]], sentences[1]]
    ) == pytest.approx(100.0)
    # chrF gives credit for a near-miss spelling, between nothing and everything.
    assert 50 < chrf(["the colour of the sky is blue"], ["the color of the sky is blue"]) < 100


def test_squad_normalization_exact_match_and_f1():
    assert normalize_answer("  The  Eiffel Tower! ") == "eiffel tower"
    assert exact_match(["the Eiffel Tower"], ["Eiffel tower!"]) == pytest.approx(100.0)
    # "Eiffel Tower in Paris" against "the Eiffel Tower": 2 shared words, P = 2/4, R = 2/2,
    # F1 = 2/3; not an exact match.
    predictions = ["the Eiffel Tower", "Eiffel Tower in Paris"]
    references = ["Eiffel tower!", "the Eiffel Tower"]
    assert exact_match(predictions, references) == pytest.approx(50.0)
    assert token_f1(predictions, references) == pytest.approx((100 + 100 * 2 / 3) / 2)
    # Repeated words count as often as they appear on both sides: "paris paris" vs "paris"
    # shares one: P = 1/2, R = 1, F1 = 2/3.
    assert token_f1(["Paris Paris"], ["Paris"]) == pytest.approx(100 * 2 / 3)
    # Best of several references; an answer that is only an article matches an empty one.
    assert exact_match(["four"], [["4", "Four."]]) == pytest.approx(100.0)
    assert token_f1(["the"], [""]) == pytest.approx(100.0)
    assert token_f1(["blue"], ["red"]) == 0.0


def test_mismatched_inputs_are_refused():
    with pytest.raises(TllmError, match="2 predictions but 1 references"):
        exact_match(["a", "b"], ["a"])
    with pytest.raises(TllmError, match="non-empty list"):
        bleu(["a"], [[]])
    with pytest.raises(TllmError, match="no predictions"):
        rouge([], [])
