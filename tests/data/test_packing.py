"""Packing: several examples share a row, yet each one computes exactly what it computes
alone (the proof that they do not attend to each other), learns nothing across a boundary,
and no token or label is lost."""

import pytest

from tests.tiny_models import make_tiny_model
from together_llm.errors import TllmError
from together_llm.train.inputs.packing import (
    IGNORE,
    block_causal_mask,
    collate,
    pack,
    packing_layout,
)

# Chat-like examples: a prompt that is not learned, then a reply that is.
EXAMPLES = [
    {"input_ids": [5, 6, 7, 8, 9, 10, 11], "labels": [IGNORE] * 4 + [9, 10, 11]},
    {"input_ids": [12, 13, 14], "labels": [IGNORE, 13, 14]},
    {"input_ids": [20, 21, 22, 23, 24], "labels": [IGNORE, IGNORE, 22, 23, 24]},
    {"input_ids": [30, 31], "labels": [30, 31]},
    {"input_ids": [40, 41, 42, 43], "labels": [IGNORE, 41, 42, 43]},
]


def _load(tmp_path_factory, model_type, attention):
    from transformers import AutoModelForCausalLM

    directory = make_tiny_model(model_type, tmp_path_factory.mktemp(model_type))
    return AutoModelForCausalLM.from_pretrained(directory, attn_implementation=attention).eval()


def _alone(model, example):
    import torch

    with torch.no_grad():
        return model(torch.tensor([example["input_ids"]])).logits[0]


def _members(rows, r):
    """The examples of packed row r, found by their tokens."""
    found, at = [], 0
    for length in rows["lengths"][r]:
        ids = rows["input_ids"][r][at : at + length]
        found.append(next(e for e in EXAMPLES if e["input_ids"] == ids))
        at += length
    return found


@pytest.mark.parametrize(
    "model_type, attention",
    [("llama", "sdpa"), ("llama", "eager"), ("gpt2", "sdpa"), ("opt", "sdpa"), ("opt", "eager")],
)
def test_each_packed_example_computes_what_it_computes_alone(
    tmp_path_factory, model_type, attention
):
    import torch

    model = _load(tmp_path_factory, model_type, attention)
    layout = packing_layout(model_type)
    rows = pack(EXAMPLES, max_length=10)
    assert len(rows["input_ids"]) >= 2  # a batch of rows of different lengths: padding too
    batch = collate(
        [dict(zip(rows, values)) for values in zip(*rows.values())], with_mask=layout == "mask"
    )
    labels = batch.pop("labels")
    with torch.no_grad():
        logits = model(**batch).logits
    for r in range(len(rows["input_ids"])):
        at = 0
        for example in _members(rows, r):
            length = len(example["input_ids"])
            assert torch.allclose(logits[r, at : at + length], _alone(model, example), atol=1e-5)
            at += length
        assert (labels[r, at:] == IGNORE).all()  # padding is never learned

    # The same loss as training on the examples one by one (token-weighted).
    packed_loss = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=IGNORE, reduction="sum"
    )
    alone_loss = sum(
        torch.nn.functional.cross_entropy(
            _alone(model, e)[:-1],
            torch.tensor(e["labels"][1:]),
            ignore_index=IGNORE,
            reduction="sum",
        )
        for e in EXAMPLES
    )
    assert torch.allclose(packed_loss, alone_loss, atol=1e-4)


def test_without_isolation_the_examples_would_leak(tmp_path_factory):
    """The check above can fail: packed with ordinary positions, or with the model's default
    cache on, the second example sees the first and its logits change."""
    import torch

    model = _load(tmp_path_factory, "llama", "sdpa")
    rows = pack(EXAMPLES[:2], max_length=10, strategy="in-order")
    ids = torch.tensor(rows["input_ids"])
    second = _alone(model, EXAMPLES[1])
    with torch.no_grad():
        plain = model(ids).logits[0, 7:]
        cached = model(ids, position_ids=torch.tensor(rows["position_ids"])).logits[0, 7:]
        isolated = model(
            ids, position_ids=torch.tensor(rows["position_ids"]), use_cache=False
        ).logits[0, 7:]
    assert not torch.allclose(plain, second, atol=1e-3)
    assert not torch.allclose(cached, second, atol=1e-3)
    assert torch.allclose(isolated, second, atol=1e-5)


def test_positions_restart_boundaries_are_not_learned_and_nothing_is_lost():
    for strategy in ("best-fit", "in-order"):
        rows = pack(EXAMPLES, max_length=10, strategy=strategy)
        assert all(len(ids) <= 10 for ids in rows["input_ids"])
        packed_ids = []
        for r, ids in enumerate(rows["input_ids"]):
            at = 0
            for example, length in zip(_members(rows, r), rows["lengths"][r]):
                assert rows["position_ids"][r][at : at + length] == list(range(length))
                assert rows["labels"][r][at] == IGNORE  # first token of every example
                assert rows["labels"][r][at + 1 : at + length] == example["labels"][1:]
                packed_ids.append(ids[at : at + length])
                at += length
            assert at == len(ids)
        # Every example exactly once, whole; the labels a loss can use (all but each
        # sequence's first, which nothing precedes) are all still there.
        assert sorted(packed_ids) == sorted(e["input_ids"] for e in EXAMPLES)
        learned = sum(label != IGNORE for labels in rows["labels"] for label in labels)
        assert learned == sum(label != IGNORE for e in EXAMPLES for label in e["labels"][1:])


def test_best_fit_fills_rows_tighter_than_keeping_the_order():
    examples = [{"input_ids": [7] * n} for n in (6, 5, 4, 3, 2)]  # 20 tokens
    assert len(pack(examples, 10)["input_ids"]) == 2  # 6+4 and 5+3+2
    assert len(pack(examples, 10, strategy="in-order")["input_ids"]) == 3
    examples_without_labels = pack(examples, 10)
    assert examples_without_labels["labels"][0][0] == IGNORE


def test_examples_longer_than_a_row_are_refused_not_cut():
    with pytest.raises(TllmError, match="truncate examples to max_length before packing"):
        pack([{"input_ids": [1] * 12}], max_length=10)
    with pytest.raises(TllmError, match="3 tokens but 2 labels"):
        pack([{"input_ids": [1, 2, 3], "labels": [1, 2]}], max_length=10)
    with pytest.raises(TllmError, match="unknown packing strategy"):
        pack(EXAMPLES, 10, strategy="random")


def test_block_mask_lets_each_token_see_only_its_own_example_causally():
    mask = block_causal_mask([0, 1, 2, 0, 1, 0])
    allowed = (mask[0, 0] == 0).int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 1, 1, 0],
        [0, 0, 0, 0, 0, 1],
    ]


def test_packing_layout_names_what_each_model_needs():
    assert packing_layout("llama") == packing_layout("gpt2") == "position_ids"
    assert packing_layout("opt") == "mask"
    assert packing_layout("bloom") is None  # ALiBi is built from the 2-D mask
    assert packing_layout("bert") is None and packing_layout("t5") is None
    assert packing_layout("llama", method="prefix") is None
    assert packing_layout("llama", method="lora") == "position_ids"
