"""Perplexity against hand-computed values: fake models with known next-token distributions,
the sliding window's bookkeeping, and one end-to-end run on the tiny LLaMA."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from together_llm.errors import TllmError
from together_llm.evaluate.perplexity import Scored, perplexity, sequence_nll, window_spans

from .fakes import CharTokenizer, Unigram


class Lookback(torch.nn.Module):
    """Knows the text repeats every `period` tokens: when the token one period back is inside
    its window it predicts it with probability 0.9, else it guesses uniformly over `vocab`."""

    def __init__(self, vocab: int, period: int):
        super().__init__()
        self.vocab, self.period = vocab, period
        self.boost = math.log(0.9 * (vocab - 1) / 0.1)  # e^boost / (e^boost + vocab - 1) = 0.9

    def forward(self, input_ids, attention_mask=None):
        batch, length = input_ids.shape
        logits = torch.zeros(batch, length, self.vocab)
        for t in range(length):
            back = t + 1 - self.period  # where the token to predict at t+1 appeared before
            if back >= 0:
                logits[torch.arange(batch), t, input_ids[:, back]] += self.boost
        return SimpleNamespace(logits=logits)


def test_uniform_model_has_perplexity_of_its_vocabulary():
    result = perplexity(
        Unigram([1 / 7] * 7), CharTokenizer(), [{"text": "abcde"}, {"text": "eeba"}]
    )
    assert result.perplexity == pytest.approx(7.0, rel=1e-5)
    # Every character is scored, the first one after the BOS that is added in front.
    assert (result.tokens, result.rows) == (9, 2)


def test_known_distribution_gives_exp_of_cross_entropy_by_hand():
    model = Unigram([0.1, 0.2, 0.3, 0.4])
    ids = [0, 1, 2, 3, 3]  # positions 1..4 are scored: 0.2, 0.3, 0.4, 0.4
    total, count = sequence_nll(model, [Scored(ids, [False] + [True] * 4)], window=8)
    assert count == 4
    assert total == pytest.approx(-(math.log(0.2) + math.log(0.3) + 2 * math.log(0.4)), rel=1e-6)


@pytest.mark.parametrize("window,stride", [(2, 1), (4, 1), (4, 3), (5, 2), (64, 32)])
def test_sliding_window_scores_every_token_exactly_once(window, stride):
    # A context-free model with a different probability for each token: a token scored twice
    # or skipped would change the sum.
    probs = [2**k / 255 for k in range(8)]
    ids = [k % 8 for k in range(3, 40)]
    total, count = sequence_nll(
        Unigram(probs),
        [Scored(ids, [False] + [True] * (len(ids) - 1))],
        window=window,
        stride=stride,
        batch_size=3,
    )
    assert count == len(ids) - 1
    assert total == pytest.approx(-sum(math.log(probs[i]) for i in ids[1:]), rel=1e-5)


def test_spans_tile_the_sequence_with_context_from_the_window():
    spans = window_spans(10, window=4, stride=2)
    assert spans == [(0, 4, 1), (2, 6, 4), (4, 8, 6), (6, 10, 8)]
    for start, _end, first in spans[1:]:
        assert (
            first - start >= 4 - 2
        )  # each newly scored token sees at least window-stride before it


def test_a_wider_window_helps_a_model_that_reads_context():
    period, vocab = 5, 10
    ids = [3, 1, 4, 7, 5] * 4
    rows = [Scored(ids, [False] + [True] * 19)]
    model = Lookback(vocab, period)

    def ppl(window, stride):
        total, count = sequence_nll(model, rows, window=window, stride=stride)
        assert count == 19
        return math.exp(total / count)

    # With the whole text in view, targets 5..19 see their copy one period back (p = 0.9)
    # and targets 1..4 are guesses (p = 0.1).
    full = math.exp(-(15 * math.log(0.9) + 4 * math.log(0.1)) / 19)
    assert ppl(64, 32) == pytest.approx(full, rel=1e-5)
    # Stride 1 keeps window-1 = 5 tokens of context: still enough.
    assert ppl(6, 1) == pytest.approx(full, rel=1e-5)
    # Stride 3: each window after the first scores 3 new tokens with 3, 4 and 5 tokens of
    # context, so only its last one sees the copy: targets 5, 8, 11, 14, 17 (19 falls in a
    # last window scoring 18 and 19 with 3 and 4 tokens of context).
    partial = math.exp(-(5 * math.log(0.9) + 14 * math.log(0.1)) / 19)
    assert ppl(6, 3) == pytest.approx(partial, rel=1e-5)
    # A window shorter than the period never sees the copy: uniform, perplexity 10.
    assert ppl(3, 1) == pytest.approx(10.0, rel=1e-5)


def test_bad_windows_are_refused():
    with pytest.raises(TllmError, match="stride"):
        window_spans(10, window=4, stride=4)
    with pytest.raises(TllmError, match="window"):
        window_spans(10, window=1, stride=1)
    with pytest.raises(TllmError, match="text or chat"):
        perplexity(
            Unigram([0.5, 0.5]), CharTokenizer(), [{"source": "a", "target": "b"}], kind="seq2seq"
        )


def test_tiny_llama_end_to_end(tiny):
    from peft import LoraConfig, get_peft_model

    from together_llm.train.inputs.encode import IGNORE, encode_chat

    model, tokenizer = tiny
    texts = [
        {"text": "The cat sat on the mat and looked at the moon. " * 3},
        {"text": "Question: what is two plus two? Answer: four."},
    ]
    whole = perplexity(model, tokenizer, texts, kind="text")
    windowed = perplexity(model, tokenizer, texts, kind="text", window=16, stride=8)
    n_tokens = sum(len(tokenizer(t["text"], add_special_tokens=False)["input_ids"]) for t in texts)
    assert whole.tokens == windowed.tokens == n_tokens
    # A random model is close to guessing among its 320 tokens; a shorter context changes
    # the figure but not by much.
    assert 50 < whole.perplexity < 2000
    assert windowed.perplexity != pytest.approx(whole.perplexity, rel=1e-6)

    chats = [
        {
            "messages": [
                {"role": "user", "content": "What does the cat say?"},
                {"role": "assistant", "content": "The cat says meow."},
            ]
        }
    ]
    chat = perplexity(model, tokenizer, chats, kind="chat")
    labels = encode_chat(chats[0], tokenizer)["labels"]
    assert chat.tokens == sum(label != IGNORE for label in labels) < len(labels)

    # A fresh LoRA adapter starts as the identity (B = 0): the same perplexity through PEFT.
    adapted = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    try:
        assert perplexity(adapted, tokenizer, texts).perplexity == pytest.approx(
            whole.perplexity, rel=1e-4
        )
    finally:
        adapted.unload()
