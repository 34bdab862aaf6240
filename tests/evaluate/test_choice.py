"""Multiple choice: acc, acc_norm and ECE by hand, then option scoring through models."""

from __future__ import annotations

import math

import pytest

from together_llm.errors import TllmError
from together_llm.evaluate.choice import (
    ChoiceItem,
    choice_metrics,
    expected_calibration_error,
    multiple_choice,
    option_logprobs,
)

from .fakes import CharTokenizer, Unigram


def test_acc_and_acc_norm_disagree_on_a_long_right_option():
    # The long right answer collects more log-probability in total (-6.6 < -4.0) but less
    # per character (-6.6 / 33 = -0.2 > -4.0 / 5 = -0.8): acc picks "Paris", acc_norm the
    # long answer.
    options = ["Paris", "the capital city of France, Paris"]
    assert [len(o) for o in options] == [5, 33]
    item = ChoiceItem(logprobs=[-4.0, -6.6], lengths=[5, 33], gold=1)
    metrics = choice_metrics([item])
    assert (metrics.acc, metrics.acc_norm) == (0.0, 1.0)
    # When the short option is right, acc is right and acc_norm wrong.
    metrics = choice_metrics([ChoiceItem([-4.0, -6.6], [5, 33], gold=0)])
    assert (metrics.acc, metrics.acc_norm) == (1.0, 0.0)


def test_ece_by_hand():
    log = math.log
    items = [
        ChoiceItem([log(0.9), log(0.1)], [1, 1], gold=0),  # confidence 0.9, right
        ChoiceItem([log(0.9), log(0.1)], [1, 1], gold=1),  # confidence 0.9, wrong
        ChoiceItem([log(0.6), log(0.4)], [1, 1], gold=0),  # confidence 0.6, right
        # Log-probabilities of whole options need not sum to one: softmax renormalizes
        # 0.25 and 0.75 of the mass into 0.25 / 0.75.
        ChoiceItem([log(0.25) - 3, log(0.75) - 3], [1, 1], gold=1),  # confidence 0.75, right
    ]
    metrics = choice_metrics(items)
    assert metrics.acc == 0.75
    # Bin 0.9: 2 items, accuracy 1/2, confidence 0.9 -> 2/4 * 0.4 = 0.2
    # Bin 0.6: accuracy 1, confidence 0.6 -> 1/4 * 0.4 = 0.1
    # Bin 0.7: accuracy 1, confidence 0.75 -> 1/4 * 0.25 = 0.0625
    assert metrics.ece == pytest.approx(0.3625)
    # A perfectly calibrated set: confidence 0.5 and right half the time.
    assert expected_calibration_error([0.5, 0.5], [True, False]) == pytest.approx(0.0)
    # Always sure, always wrong: the worst.
    assert expected_calibration_error([1.0, 1.0], [False, False]) == pytest.approx(1.0)


def test_bad_items_are_refused():
    with pytest.raises(TllmError, match="two or more options"):
        choice_metrics([ChoiceItem([-1.0], [1], gold=0)])
    with pytest.raises(TllmError, match="gold index"):
        choice_metrics([ChoiceItem([-1.0, -2.0], [1, 1], gold=2)])
    with pytest.raises(TllmError, match="not one of its choices"):
        multiple_choice(
            Unigram([0.5, 0.5]),
            CharTokenizer(),
            [{"question": "a", "choices": ["b", "c"], "answer": "d"}],
        )


def test_option_logprobs_sum_the_option_tokens_after_the_context():
    # ids: 0 eos, 1 bos, 2..6 'a'..'e', 7 ' '
    probs = [0.02, 0.02, 0.3, 0.2, 0.2, 0.1, 0.1, 0.06]
    model, tokenizer = Unigram(probs), CharTokenizer()
    # The space joining the context and the option belongs to the option, as in the harness.
    got = option_logprobs(model, tokenizer, "abc", ["a", "ed"])
    assert got == pytest.approx([math.log(0.06 * 0.3), math.log(0.06 * 0.1 * 0.1)], rel=1e-5)
    # A text longer than the model's context keeps the option and the nearest context.
    model.config = type("Config", (), {"max_position_embeddings": 4})()
    assert option_logprobs(model, tokenizer, "abcdeabcde", ["a", "ed"]) == pytest.approx(
        got, rel=1e-5
    )
    with pytest.raises(TllmError, match="longer than the model's context"):
        option_logprobs(model, tokenizer, "abc", ["abcde"])
    del model.config
    rows = [
        {"question": "abc", "choices": ["a", "ed"], "answer": 0},
        {"question": "bad", "choices": ["ed", "a"], "answer": "ed"},
    ]
    metrics = multiple_choice(model, tokenizer, rows)
    assert (metrics.acc, metrics.items) == (0.5, 2)


def test_option_logprobs_on_the_tiny_llama_match_perplexity_scoring(tiny):
    from together_llm.evaluate.perplexity import Scored, sequence_nll

    model, tokenizer = tiny
    context, options = "Question: what is two plus two? Answer:", ["four", "the cat sat"]
    got = option_logprobs(model, tokenizer, context, options)
    # The same tokens scored one option at a time by the perplexity code: the two agree.
    context_ids = [tokenizer.bos_token_id] + tokenizer(context, add_special_tokens=False)[
        "input_ids"
    ]
    for option, logprob in zip(options, got):
        ids = [tokenizer.bos_token_id] + tokenizer(
            context + " " + option, add_special_tokens=False
        )["input_ids"]
        assert ids[: len(context_ids)] == context_ids
        flags = [False] * len(context_ids) + [True] * (len(ids) - len(context_ids))
        total, count = sequence_nll(model, [Scored(ids, flags)], window=64)
        assert count >= 1
        assert logprob == pytest.approx(-total, rel=1e-4)
