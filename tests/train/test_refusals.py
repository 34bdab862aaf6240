"""Bad input is refused with a specific message, before the model is loaded where possible,
and nothing is left half-written."""

import pytest

from together_llm.errors import TllmError
from together_llm.train.recipe import load_recipe
from together_llm.train.run import train

from .conftest import chat_rows, write_dataset


def recipe(**fields):
    return load_recipe(None, {"data": "sounds", "name": "sounds", "max_steps": 2, **fields})


def test_wrong_kind_names_the_kinds_the_stage_accepts(tiny_home):
    with pytest.raises(
        TllmError,
        match="stage sft trains on chat datasets; dataset 'notes' is "
        r"text \(text data trains with --stage pt\)",
    ):
        train(tiny_home, recipe(data="notes"))
    with pytest.raises(
        TllmError, match="stage pt trains on text datasets; dataset 'sounds' is chat"
    ):
        train(tiny_home, recipe(stage="pt"))


def test_empty_dataset(tiny_home):
    write_dataset(tiny_home, "nothing", "chat", [])
    with pytest.raises(TllmError, match="dataset 'nothing' has no rows to train on"):
        train(tiny_home, recipe(data="nothing"))


def test_every_row_too_long_is_reported_not_trained_on(tiny_home):
    """Cut to 8 tokens, no conversation keeps an assistant token: refused with the count."""
    with pytest.raises(
        TllmError,
        match=r"every row of dataset 'sounds' \(8\) lost all its "
        "assistant tokens when cut to max_length 8",
    ):
        train(tiny_home, recipe(max_length=8))
    assert not (tiny_home.adapters_dir / "sounds").exists()
    assert list((tiny_home.path / "runs").iterdir()) == []  # no half-made run to resume


def test_some_rows_too_long_are_counted(tiny_home):
    long = [
        {
            "messages": [
                {"role": "user", "content": "tell me " * 80},
                {"role": "assistant", "content": "no"},
            ]
        }
    ]
    write_dataset(tiny_home, "mixed", "chat", chat_rows() + long)
    messages = []
    metrics = train(tiny_home, recipe(data="mixed", max_length=100), report=messages.append)
    assert metrics["preprocessing"]["train"]["dropped_no_labels"] == 1
    assert metrics["examples"] == 8
    assert any("1 of 9 rows dropped" in m for m in messages)


def test_existing_adapter_needs_overwrite(tiny_home):
    train(tiny_home, recipe())
    before = (tiny_home.adapters_dir / "sounds" / "card.json").read_text()
    with pytest.raises(TllmError, match="an adapter named 'sounds' already exists .*--overwrite"):
        train(tiny_home, recipe())
    assert (tiny_home.adapters_dir / "sounds" / "card.json").read_text() == before
    metrics = train(tiny_home, recipe(overwrite="true"))
    assert metrics["run_id"] in (tiny_home.adapters_dir / "sounds" / "card.json").read_text()


def test_refused_before_loading(tiny_home):
    with pytest.raises(
        TllmError,
        match="stage classify trains on classification datasets; dataset 'sounds' is chat",
    ):
        train(tiny_home, recipe(stage="classify"))
    with pytest.raises(
        TllmError,
        match="llama is a decoder and does not serve seq2seq; tasks it serves: causal-lm, classify",
    ):
        train(tiny_home, recipe(stage="seq2seq"))
    with pytest.raises(TllmError, match="unknown model 'nope'"):
        train(tiny_home, recipe(base="nope"))
    with pytest.raises(TllmError, match="no dataset named 'missing'"):
        train(tiny_home, recipe(data="missing"))
    with pytest.raises(TllmError, match="lr: must be greater than 0"):
        recipe(lr="0")
