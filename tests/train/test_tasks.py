"""The stages beyond chat: classify on a decoder (a head read at its last token) with eval
accuracy, and seq2seq on FLAN-style chat rows (the last answer is the target)."""

import json

import torch

from tests.tiny_models import make_tiny_model
from together_llm.train.recipe import load_recipe
from together_llm.train.run import train_model
from together_llm.train.stages.seq2seq import chat_as_seq2seq

from .conftest import write_dataset

# Which animals are pets: eight rows, two classes.
PETS = [
    ("cat", "pet"),
    ("dog", "pet"),
    ("hamster", "pet"),
    ("rabbit", "pet"),
    ("cow", "farm"),
    ("sheep", "farm"),
    ("goat", "farm"),
    ("pig", "farm"),
]


def log_of(home, metrics) -> list[dict]:
    path = home.path / "runs" / metrics["run_id"] / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_decoder_learns_to_classify_and_reports_accuracy(tiny_home):
    from peft import PeftModel

    from together_llm.data.split import split_dataset
    from together_llm.models.load_hf import load_hf
    from together_llm.models.registry import get_model

    rows = [{"text": f"The {animal} lives with us.", "label": label} for animal, label in PETS] * 2
    write_dataset(tiny_home, "homes", "classification", rows)
    split_dataset(tiny_home, "homes", 0.25, seed=1)
    metrics, trained = train_model(
        tiny_home,
        load_recipe(
            None,
            {
                "data": "homes",
                "stage": "classify",
                "name": "router",
                "max_steps": 24,
                "batch_size": 4,
                "lr": 1e-2,
                "scheduler": "constant",
                "logging_every": 4,
                "eval_every": 12,
            },
        ),
    )
    losses = [r["loss"] for r in log_of(tiny_home, metrics) if "loss" in r]
    assert losses[-1] < losses[0], losses
    evals = [r for r in log_of(tiny_home, metrics) if "eval_accuracy" in r]
    assert len(evals) == 2 and 0 <= evals[-1]["eval_accuracy"] <= 1
    assert metrics["eval_accuracy"] == evals[-1]["eval_accuracy"]
    card = json.loads((tiny_home.adapters_dir / "router" / "card.json").read_text())
    assert card["labels"] == ["farm", "pet"] and card["stage"] == "classify"

    # The head is saved with the adapter: plain PEFT on a fresh two-label head gives it back.
    inputs = {"input_ids": torch.tensor([[1, 40, 41, 42, 43]])}
    base, _ = load_hf(
        get_model(tiny_home, "tiny").hf_dir,
        "classify",
        "lora",
        dtype="float32",
        labels=card["labels"],
    )
    reloaded = PeftModel.from_pretrained(base, tiny_home.adapters_dir / "router").eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(**inputs).logits, trained.eval()(**inputs).logits, atol=1e-5)
    assert reloaded.config.id2label == {0: "farm", 1: "pet"}


def test_chat_rows_become_source_and_target():
    single = {
        "messages": [
            {"role": "user", "content": "Translate: chat"},
            {"role": "assistant", "content": "cat"},
        ]
    }
    assert chat_as_seq2seq(single) == {"source": "Translate: chat", "target": "cat"}
    turns = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Name a colour"},
            {"role": "assistant", "content": "Red"},
        ]
    }
    assert chat_as_seq2seq(turns) == {
        "source": "Be brief.\n\nUser: Hi\nAssistant: Hello\nUser: Name a colour",
        "target": "Red",
    }


def test_seq2seq_learns_from_flan_style_chat_rows(tiny_home, tmp_path):
    from together_llm.models.registry import add_model

    add_model(tiny_home, "tiny-t5", str(make_tiny_model("t5", tmp_path / "t5")))
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"What does the {animal} say?"},
                {"role": "assistant", "content": sound},
            ]
        }
        for animal, sound in [("cat", "meow"), ("dog", "woof"), ("cow", "moo"), ("owl", "hoot")]
    ]
    write_dataset(tiny_home, "asks", "chat", rows)
    metrics, _ = train_model(
        tiny_home,
        load_recipe(
            None,
            {
                "data": "asks",
                "stage": "seq2seq",
                "base": "tiny-t5",
                "name": "t5-sounds",
                "max_steps": 20,
                "batch_size": 4,
                "lr": 1e-2,
                "scheduler": "constant",
                "logging_every": 5,
            },
        ),
    )
    losses = [r["loss"] for r in log_of(tiny_home, metrics)]
    assert losses[-1] < losses[0] - 0.5, losses
    # tokens/s counts what the encoder read and what the decoder learned
    assert metrics["tokens"] > metrics["label_tokens"] > 0
