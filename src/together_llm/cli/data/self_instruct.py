"""`tllm data self-instruct`: grow an instruction dataset with a teacher model."""

from __future__ import annotations

import json

import click

from ..common import home_options, open_home
from .progress import progress


@click.command(name="self-instruct")
@click.option(
    "--seeds",
    "seeds_path",
    type=click.Path(dir_okay=False),
    help="Seed tasks, JSONL: instruction, instances [{input, output}], "
    "is_classification (default: the bundled ones).",
)
@click.option("--count", type=int, required=True, help="How many new tasks to keep.")
@click.option(
    "--teacher",
    default="default",
    show_default=True,
    help="default (the home's model), a registered model name, or the URL of an "
    "OpenAI-compatible endpoint.",
)
@click.option("--teacher-model", help="URL teacher: the model to ask for (default: its first).")
@click.option(
    "--api-key",
    envvar="TLLM_TEACHER_API_KEY",
    help="URL teacher: the API key (or set TLLM_TEACHER_API_KEY); never written to disk.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Same seed, teacher and seeds = same dataset.",
)
@click.option(
    "--max-steps",
    type=int,
    default=10,
    show_default=True,
    help="Give up after this many steps in a row that keep no new task.",
)
@click.option("--name", required=True, help="Name of the new dataset.")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
@home_options
def self_instruct(
    seeds_path, count, teacher, teacher_model, api_key, seed, max_steps, name, as_json, home_dir
):
    """Generate COUNT new instruction tasks with a teacher model (Self-Instruct) and save
    them as a chat dataset.

    Each step the teacher continues a list of seed and earlier tasks; new instructions too
    similar to a kept one (ROUGE-L >= 0.7), too short or long, duplicated, or needing what a
    text model cannot do (images, files, maps...) are dropped; the teacher then writes inputs
    and outputs for each (class labels first for classification tasks).

    Interrupted (Ctrl-C)? Run the same command again: it resumes from
    datasets/.self-instruct-NAME/ without losing or repeating tasks, as long as the teacher
    (the model behind --teacher, even `default`), --seed and the seeds are the same. One run
    per NAME at a time. The card records the teacher (a URL without any user:password).

    \b
    Examples:
      tllm data self-instruct --count 50 --name grown
      tllm data self-instruct --seeds my_tasks.jsonl --count 200 --seed 1 --name grown
      tllm data self-instruct --count 500 --teacher http://localhost:8000/v1 --name big
    """
    from ...data.generate.filters import describe_drops
    from ...data.generate.self_instruct import self_instruct as run

    home = open_home(home_dir)
    # Every task takes the teacher seconds: worth a bar (kept on screen) from the first one.
    with progress("self-instruct", count, unit="tasks", at_least=1, transient=False) as update:
        card = run(
            home,
            name,
            count,
            seeds_path=seeds_path,
            teacher=teacher,
            teacher_model=teacher_model,
            api_key=api_key,
            seed=seed,
            patience=max_steps,
            report=lambda kept, total, state: update(kept, _step_note(state)),
        )
    if as_json:
        click.echo(json.dumps(card, indent=2))
        return
    details = card["self_instruct"]
    click.echo(
        f"{card['name']}: {details['tasks']} tasks, {card['rows']} chat rows "
        f"({details['generated']} instructions generated in {details['steps']} steps "
        f"by {details['teacher']})"
    )
    for level in ("instructions", "instances"):
        if details[f"dropped_{level}"]:
            click.echo(f"  dropped {level}: {describe_drops(details[f'dropped_{level}'])}")


def _step_note(state: dict) -> str:
    """What the bar says after the count: the step, and what the filters dropped so far."""
    from ...data.generate.filters import describe_drops

    dropped = state["dropped_instructions"]
    return f"step {state['step'] + 1}" + (
        f" · dropped: {describe_drops(dropped)}" if dropped else ""
    )
