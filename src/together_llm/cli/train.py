"""`tllm train`: flags are made from the recipe's fields (train/recipe.py), so every recipe
key is a flag with the same help, and a flag overrides the recipe file."""

from __future__ import annotations

import dataclasses
import json
import typing

import click

from ..train.recipe import Recipe, load_recipe, recipe_fields
from ..train.run import train as run_training
from .common import home_options, open_home

# Short flags users expect from the command-line contract.
ALIASES = {"data": "-d", "name": "-n"}


def _recipe_options(func):
    hints = typing.get_type_hints(Recipe)
    for f in reversed(recipe_fields()):
        flag = "--" + f.name.replace("_", "-")
        meta = f.metadata
        help_text = meta["help"]
        if hints[f.name] is bool:
            default = " (default: on)" if f.default else ""
            option = click.option(
                f"{flag}/--no-{flag[2:]}", f.name, default=None, help=help_text + default
            )
        else:
            choices = meta.get("choices")
            shown = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            names = [flag] + ([ALIASES[f.name]] if f.name in ALIASES else [])
            option = click.option(
                *names,
                f.name,
                default=None,
                metavar=_metavar(hints[f.name], choices),
                help=help_text + ("" if shown in (None, []) else f" (default: {shown})"),
            )
        func = option(func)
    return func


def _metavar(kind, choices) -> str:
    if choices:
        return "[" + "|".join(choices) + "]"
    kind = next((a for a in typing.get_args(kind) if a is not type(None)), kind)
    return {int: "N", float: "X", list: "A,B"}.get(kind, "TEXT")


@click.command()
@click.argument("recipe_file", required=False, type=click.Path(dir_okay=False))
@_recipe_options
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
    metrics = run_training(home, recipe, report=report, show_progress=not as_json)
    if "result" not in metrics:  # another process of a torchrun: rank 0 reports
        return
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    evaluated = (
        f", eval loss {metrics['eval_loss']:.4f}" if metrics["eval_loss"] is not None else ""
    )
    click.echo(
        f"trained {recipe.name} ({recipe.stage}, {recipe.method}) in {metrics['steps']} steps: "
        f"loss {metrics['train_loss']:.4f}{evaluated}, {metrics['tokens_per_s']:,.0f} tokens/s"
    )
    click.echo(f"saved {metrics['result']}; run folder {home.path / 'runs' / metrics['run_id']}")
