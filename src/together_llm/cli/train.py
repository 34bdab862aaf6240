"""`tllm train`: flags are made from the recipe's fields (train/recipe.py), so every recipe
key is a flag with the same help, and a flag overrides the recipe file."""

from __future__ import annotations

import json

import click

from ..settings_kit import click_options
from ..train.recipe import Recipe, load_recipe
from ..train.run import train_record
from .common import home_options, open_home


@click.command()
@click.argument("recipe_file", required=False, type=click.Path(dir_okay=False))
@click_options(Recipe)
@click.option("--json", "as_json", is_flag=True, help="Print the final metrics as JSON.")
@home_options
def train(recipe_file, as_json, home_dir, **flags):
    """Train the assistant: an adapter (or, with --method full, a model) on a dataset.

    RECIPE_FILE is an optional YAML file of the same keys as the flags below (max_steps for
    --max-steps); flags override it. Each run writes runs/<id>/: config.yaml, log.jsonl,
    metrics.json, plots/loss.png and checkpoints/. Ctrl-C saves a checkpoint; run the same
    command with --resume to continue.

    \b
    Examples:
      tllm train --data my-chats --stage sft --method lora --name me
      tllm train --data notes --stage pt --method lora --name notes --max-steps 200
      tllm train recipe.yaml --lr 1e-4
      tllm train --data my-chats --name me --resume
    """

    recipe = load_recipe(recipe_file, flags)  # refuses bad values before anything loads
    home = open_home(home_dir)

    report = lambda message: click.echo(message, err=True)  # noqa: E731
    record, _ = train_record(home, recipe, report=report, show_progress=not as_json)
    if record.result is None:  # another process of a torchrun: rank 0 reports
        return
    if as_json:
        click.echo(json.dumps(record.to_dict(), indent=2))
        return
    evaluated = f", eval loss {record.eval_loss:.4f}" if record.eval_loss is not None else ""
    click.echo(
        f"trained {recipe.name} ({recipe.stage}, {recipe.method}) in {record.steps} steps: "
        f"loss {record.train_loss:.4f}{evaluated}, {record.tokens_per_s:,.0f} tokens/s"
    )
    click.echo(f"saved {record.result}; run folder {home.runs_dir / record.run_id}")
