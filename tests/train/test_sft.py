"""sft and pt on a tiny LLaMA: the loss falls, the adapter is plain PEFT that reproduces the
trained model, and the run folder holds what a user reads afterwards."""

import json

import pytest
import torch
import yaml

from together_llm.data.split import split_dataset
from together_llm.models.fingerprint import fingerprint
from together_llm.train.recipe import load_recipe
from together_llm.train.run import train_model

from .conftest import LEARNABLE, assert_same_adapters


def recipe(**fields):
    return load_recipe(
        None,
        {
            "data": "sounds",
            "name": "sounds",
            "max_steps": 40,
            "batch_size": 4,
            "logging_every": 5,
            **LEARNABLE,
            **fields,
        },
    )


def log_of(home, metrics):
    path = home.path / "runs" / metrics["run_id"] / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sft_lora_learns_and_the_adapter_is_plain_peft(tiny_home, tiny_llama):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    split_dataset(tiny_home, "sounds", 2, seed=0)
    metrics, trained = train_model(tiny_home, recipe(eval_every=20))

    log = log_of(tiny_home, metrics)
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) == 8 and losses[-1] < losses[0] - 1.0, losses
    evals = [r["eval_loss"] for r in log if "eval_loss" in r]
    assert [r["step"] for r in log if "eval_loss" in r] == [20, 40]
    assert metrics["eval_loss"] == evals[-1] and metrics["steps"] == 40
    assert metrics["packing"] is True
    assert metrics["preprocessing"]["train"] == {"kept": 6, "truncated": 0, "dropped_no_labels": 0}
    # for a watcher elsewhere (the studio's Improve tab): where the run got to, and its loss
    seen = json.loads((tiny_home.path / "runs" / metrics["run_id"] / "progress.json").read_text())
    assert (seen["step"], seen["steps"]) == (40, 40) and seen["loss"] == pytest.approx(
        metrics["train_loss"]
    )

    folder = tiny_home.adapters_dir / "sounds"
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "card.json",
    ]
    card = json.loads((folder / "card.json").read_text())
    assert card["base"] == "tiny" and card["base_fingerprint"] == fingerprint(tiny_llama)
    assert (card["stage"], card["method"], card["data"], card["steps"]) == (
        "sft",
        "lora",
        "sounds",
        40,
    )
    assert card["data_fingerprint"] and card["run_id"] == metrics["run_id"]
    assert card["metrics"]["train_loss"] == metrics["train_loss"]

    # Plain PEFT, on a freshly loaded base, computes what the trained model computes.
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    inputs = tokenizer(["What does the cow say? The cow says moo."], return_tensors="pt")
    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    reloaded = PeftModel.from_pretrained(base, folder).eval()
    trained.eval()
    with torch.no_grad():
        expected = trained(**inputs).logits
        assert torch.allclose(reloaded(**inputs).logits, expected, atol=1e-5)
        with reloaded.disable_adapter():  # and the adapter is what changed it
            assert not torch.allclose(reloaded(**inputs).logits, expected, atol=1e-2)


def test_run_folder_artifacts(tiny_home):
    metrics, _ = train_model(tiny_home, recipe(max_steps=6, logging_every=2))
    run = tiny_home.path / "runs" / metrics["run_id"]
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"] == "sounds" and config["base"] == "tiny" and config["max_steps"] == 6
    assert load_recipe(run / "config.yaml").lr == 1e-2  # the resolved recipe is a recipe file
    log = log_of(tiny_home, metrics)
    assert [r["step"] for r in log] == [2, 4, 6]
    assert all(set(r) == {"step", "loss", "lr", "tokens_per_s", "epoch"} for r in log)
    assert all(r["tokens_per_s"] > 0 and r["loss"] > 0 for r in log)
    saved = json.loads((run / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert saved["eval_loss"] is None  # no eval split
    assert saved["tokens"] > saved["label_tokens"] > 0
    png = (run / "plots" / "loss.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_grouped_and_padded_training_learn_the_same(tiny_home):
    """Length groups only remove padding: the same steps on the same examples give the same
    adapter as one padded batch (dropout off, so both see the same computation; fp32, since
    bf16 products round differently for different shapes)."""
    common = {"max_steps": 4, "dropout": "0", "precision": "fp32"}
    train_model(tiny_home, recipe(name="packed", **common))
    train_model(tiny_home, recipe(name="padded", packing="false", **common))
    assert_same_adapters(tiny_home, "packed", "padded", atol=1e-4)


def test_pt_on_text_learns(tiny_home):
    metrics, _ = train_model(
        tiny_home,
        load_recipe(
            None,
            {
                "data": "notes",
                "name": "notes",
                "stage": "pt",
                "max_steps": 20,
                "max_length": 32,
                "logging_every": 5,
                **LEARNABLE,
            },
        ),
    )
    losses = [r["loss"] for r in log_of(tiny_home, metrics)]
    assert losses[-1] < losses[0] - 0.5, losses
    assert metrics["preprocessing"]["train"]["kept"] == metrics["examples"] > 1  # 32-token blocks
    card = json.loads((tiny_home.adapters_dir / "notes" / "card.json").read_text())
    assert card["stage"] == "pt"


def test_pt_from_random_init_makes_a_registered_model(tiny_home):
    from together_llm.models.registry import get_model

    metrics, _ = train_model(
        tiny_home,
        load_recipe(
            None,
            {
                "data": "notes",
                "name": "scratch",
                "stage": "pt",
                "init": "random",
                "method": "full",
                "max_steps": 20,
                "max_length": 32,
                "lr": 3e-3,
                "logging_every": 5,
            },
        ),
    )
    losses = [r["loss"] for r in log_of(tiny_home, metrics)]
    assert losses[-1] < losses[0] - 0.5, losses
    entry = get_model(tiny_home, "scratch")
    assert entry.hf_dir == tiny_home.models_dir / "scratch"
    assert (entry.hf_dir / "model.safetensors").is_file()
    card = json.loads((entry.hf_dir / "card.json").read_text())
    assert (card["stage"], card["method"]) == ("pt", "full")


def test_length_groups_pad_little_and_lose_nothing():
    from together_llm.train.batches import MicroBatches, groups

    examples = [{"input_ids": [7] * n, "labels": [7] * n} for n in (5, 40, 6, 41, 200, 7, 39)]
    found = groups(examples, row_length=128)
    assert [[len(e["input_ids"]) for e in g] for g in found] == [[5, 6], [7], [39, 40, 41], [200]]
    batches = MicroBatches(examples, 7, 0, True, 0, 128).batch(0)
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    padded = sum(b["input_ids"].numel() for b in batches)
    assert real == 338 and padded <= real * 1.125
    assert padded < len(examples) * 200 / 3  # a plain padded batch: 7 x 200


def test_start_from_goes_on_from_an_adapter_with_its_shape(tiny_home):
    """--start-from: training begins at the adapter's weights (its loss, not a fresh one),
    with its rank and targets whatever the recipe says."""
    first = train_model(tiny_home, recipe(max_steps=40, rank=4))[0]
    going_on = recipe(name="more", max_steps=5, start_from="sounds", rank=8, lr=1e-5)
    metrics = train_model(tiny_home, going_on)[0]
    fresh = train_model(tiny_home, recipe(name="fresh", max_steps=5, rank=4, lr=1e-5))[0]
    start = lambda m: log_of(tiny_home, m)[0]["loss"]
    assert start(metrics) < start(fresh) - 1.0, (start(metrics), start(fresh), first)
    config = json.loads((tiny_home.adapters_dir / "more" / "adapter_config.json").read_text())
    assert config["r"] == 4 and going_on.rank == 4  # the adapter's shape, not the recipe's
