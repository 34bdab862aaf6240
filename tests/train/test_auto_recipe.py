"""Defaults that teach (train/auto_recipe.py): on a small dataset `tllm train` with no
tuning flags chooses passes, learning rate, rank, alpha, targets and warm-up for the data
and the base, and says so; what the person gave wins; --no-auto keeps the plain defaults;
other stages and big datasets are left alone."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_tllm
from together_llm.train import auto_recipe
from together_llm.train.recipe import Recipe, load_recipe, save_recipe

SMOL = {"model_type": "llama", "hidden_size": 576}


def chosen(recipe: Recipe, rows: int, config=SMOL) -> dict:
    return {c.field: c.value for c in auto_recipe.choose(recipe, rows, config)}


def test_a_small_lora_run_gets_settings_for_its_size_and_base():
    picked = chosen(load_recipe(None, {"data": "d", "name": "n"}), 36)
    assert picked == {
        "epochs": 10.0,  # 36 rows: each seen 10 times, not 3
        "lr": 1e-3,
        "rank": 16,
        "alpha": 32.0,
        "target_modules": ["all-linear"],
        "warmup_ratio": 0.1,
    }
    assert "epochs" not in chosen(load_recipe(None, {"data": "d", "name": "n"}), 400)  # 3 fit
    wide = chosen(load_recipe(None, {"data": "d", "name": "n"}), 36, {"hidden_size": 4096})
    assert wide["lr"] == 5e-4  # a wide base takes smaller steps
    unknown = chosen(load_recipe(None, {"data": "d", "name": "n"}), 36, {"model_type": "x"})
    assert unknown["lr"] == 5e-4  # and so does one whose width config.json does not say
    going_on = load_recipe(None, {"data": "d", "name": "n", "start_from": "me"})
    going_on.fixed += ["rank", "alpha", "target_modules"]  # as train takes them from "me"
    picked = chosen(going_on, 36)
    assert picked["lr"] == 1e-3 and "rank" not in picked  # the same step, its own shape


@pytest.mark.parametrize(
    ("fields", "rows"),
    [
        ({"auto": False}, 36),  # --no-auto
        ({"stage": "dpo"}, 36),  # preference stages keep TRL's settings
        ({"method": "prefix"}, 36),
        ({}, auto_recipe.SMALL_ROWS),  # thousands of rows: the plain defaults fit
    ],
)
def test_other_runs_keep_the_plain_defaults(fields, rows):
    assert chosen(load_recipe(None, {"data": "d", "name": "n", **fields}), rows) == {}


def test_what_the_person_gave_wins(tmp_path):
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text("data: d\nname: n\nrank: 4\n")
    recipe = load_recipe(recipe_file, {"lr": "1e-4", "max_steps": "20"})
    assert recipe.fixed == ["data", "lr", "max_steps", "name", "rank"] and recipe.auto
    picked = chosen(recipe, 36)
    assert "lr" not in picked and "rank" not in picked
    assert "epochs" not in picked  # max_steps given: the length is the person's
    assert picked["target_modules"] == ["all-linear"]
    # a run's saved recipe loads back as it was: the same given settings, the same auto
    save_recipe(recipe, tmp_path / "config.yaml")
    assert load_recipe(tmp_path / "config.yaml") == recipe


def test_tllm_train_says_what_it_chose_and_trains_every_linear_layer(tiny_home):
    trained = run_tllm(
        "train", "--data", "sounds", "--name", "auto", "--max-steps", "2", home=tiny_home
    )
    assert trained.returncode == 0, trained.stderr
    line = next(x for x in trained.stderr.splitlines() if "small dataset" in x)
    assert "lr 0.001" in line and "rank 16" in line and "target-modules all-linear" in line
    config = json.loads((tiny_home.adapters_dir / "auto" / "adapter_config.json").read_text())
    layers = {name.rsplit(".", 1)[-1] for name in config["target_modules"]}
    assert config["r"] == 16 and {"q_proj", "down_proj", "gate_proj"} <= layers
    plain = run_tllm(
        "train",
        *("--data", "sounds", "--name", "plain", "--max-steps", "2", "--no-auto"),
        home=tiny_home,
    )
    assert plain.returncode == 0, plain.stderr
    assert "small dataset" not in plain.stderr
    config = json.loads((tiny_home.adapters_dir / "plain" / "adapter_config.json").read_text())
    assert config["r"] == 8 and "down_proj" not in config["target_modules"]
