"""`tllm train` as a user runs it: recipe file plus flags, clear one-line errors, and one
end-to-end run on the bundled model."""

import json

import pytest
import yaml

from tests.cli.test_lazy_imports import loaded_heavy_modules
from tests.conftest import run_tllm

from .conftest import chat_rows, write_dataset


def test_help_is_light_and_documents_every_flag(home):
    assert loaded_heavy_modules(["train", "--help"], home) == []
    result = run_tllm("train", "--help", home=home)
    assert result.returncode == 0
    for flag in (
        "--data",
        "--stage",
        "--method",
        "--name",
        "--base",
        "--epochs",
        "--max-steps",
        "--lr",
        "--rank",
        "--resume",
        "--overwrite",
        "--init",
        "--packing",
    ):
        assert flag in result.stdout


def test_recipe_file_with_flag_overrides(tiny_home, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("data: sounds\nname: from-file\nmax_steps: 50\nlr: 0.5\nlogging_every: 1\n")
    result = run_tllm("train", recipe, "--max-steps", "3", "--lr", "1e-3", "--json", home=tiny_home)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["steps"] == 3
    run = tiny_home.path / "runs" / metrics["run_id"]
    assert yaml.safe_load((run / "config.yaml").read_text())["lr"] == 1e-3  # the flag won
    # the small dataset's settings (warm-up among them) left the given ones alone
    assert "settings for a small dataset" in result.stderr and " lr " not in result.stderr
    assert (tiny_home.adapters_dir / "from-file" / "card.json").is_file()


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--data", "sounds", "--name", "x", "--lr", "0"],
            "error: invalid value '0' for lr: must be greater than 0",
        ),
        (
            ["--data", "sounds", "--name", "x", "--stage", "rl"],
            "error: --stage rl trains against a reward model",
        ),
        (
            ["--data", "sounds", "--name", "x", "--stage", "classify"],
            "error: stage classify trains on classification datasets; dataset 'sounds' is chat",
        ),
        (
            ["--data", "sounds", "--name", "x", "--method", "magic"],
            "error: invalid value 'magic' for method",
        ),
        (
            ["--data", "notes", "--name", "x"],
            "error: stage sft trains on chat datasets; dataset 'notes' is text",
        ),
        (["--name", "x"], "error: no dataset: give --data NAME"),
    ],
)
def test_errors_are_one_clear_line(tiny_home, args, message):
    result = run_tllm("train", *args, home=tiny_home)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_lora_on_the_bundled_model_through_the_cli(converted_home):
    """A handful of LoRA steps on the real SmolLM2: the loss falls on the taught answers and
    the adapter is registered for the same base."""
    write_dataset(converted_home, "train-cli-sounds", "chat", chat_rows() * 2)
    result = run_tllm(
        "train",
        "--data",
        "train-cli-sounds",
        "--name",
        "train-cli-sounds",
        "--max-steps",
        "8",
        "--lr",
        "1e-3",
        "--logging-every",
        "2",
        "--batch-size",
        "4",
        "--overwrite",
        home=converted_home,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    assert "trained train-cli-sounds (sft, lora) in 8 steps" in result.stdout
    card = json.loads((converted_home.adapters_dir / "train-cli-sounds" / "card.json").read_text())
    assert card["base"] == "default" and card["steps"] == 8
    log = (converted_home.path / "runs" / card["run_id"] / "log.jsonl").read_text().splitlines()
    losses = [json.loads(line)["loss"] for line in log]
    assert losses[-1] < losses[0], losses
