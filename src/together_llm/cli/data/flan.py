"""`tllm data flan`: classification and seq2seq rows into chat rows through FLAN templates."""

from __future__ import annotations

import json

import click

from ...data.generate.flan import flan as run
from ...data.store import open_dataset
from ..common import home_options, open_home
from .progress import progress


def _vars(ctx, param, values) -> dict[str, str]:
    parsed = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", ctx=ctx, param=param)
        parsed[key.strip()] = value
    return parsed


def _options(ctx, param, value) -> list[str] | None:
    return None if value is None else [o for o in value.split(",") if o.strip()]


@click.command()
@click.option(
    "--from", "source", required=True, help="The classification or seq2seq dataset to read."
)
@click.option("--name", required=True, help="Name of the new chat dataset.")
@click.option(
    "--template-set",
    "template_sets",
    multiple=True,
    default=("flan",),
    show_default=True,
    help="'flan' (built in), a folder of YAML template files, or one file; repeat to "
    "combine (tasks with the same name pool their phrasings).",
)
@click.option(
    "--task", help="Which task's templates to use (needed when several fit the dataset's kind)."
)
@click.option(
    "--shots",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Exemplars from other rows shown before the question (few-shot).",
)
@click.option(
    "--mix",
    type=click.FloatRange(0, 1),
    help="Fraction of rows rendered few-shot; the rest are zero-shot. [default: 1 with --shots]",
)
@click.option(
    "--shot-style",
    type=click.Choice(["inline", "turns"]),
    default="inline",
    show_default=True,
    help="Exemplars inside the one user turn (as FLAN does), or as earlier chat turns.",
)
@click.option(
    "--options",
    callback=_options,
    help="Comma-separated answers to list (default: the dataset's labels, sorted).",
)
@click.option(
    "--var",
    "variables",
    multiple=True,
    callback=_vars,
    metavar="KEY=VALUE",
    help="A template variable the rows do not carry, e.g. target_language=French.",
)
@click.option("--system", help="A system message to put first in every row.")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed for template choice and exemplar sampling.",
)
@click.option(
    "--pool",
    "pool_size",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="How many rows to sample (reservoir) as the few-shot exemplar pool.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset of that name.")
@click.option("--json", "as_json", is_flag=True, help="Print the new dataset's card as JSON.")
@home_options
def flan(
    source,
    name,
    template_sets,
    task,
    shots,
    mix,
    shot_style,
    options,
    variables,
    system,
    seed,
    pool_size,
    overwrite,
    as_json,
    home_dir,
):
    """Turn labelled rows into instructions with FLAN-style templates.

    Each row gets one template, picked at random (seeded), from the task's ten or more
    phrasings; classification tasks list the allowed answers (OPTIONS) in the prompt.
    Built-in tasks: classification, sentiment (classification datasets); extractive_qa,
    open_qa, summarization, translation, paraphrase (seq2seq datasets). Add your own by
    writing a YAML file like those in together_llm/data/templates/flan/.

    \b
    Examples:
      tllm data flan --from reviews --task sentiment --name reviews-flan
      tllm data flan --from reviews --task sentiment --shots 3 --mix 0.3 --name reviews-fs
      tllm data flan --from pairs --task translation --var target_language=French --name fr
      tllm data flan --from qa --task extractive_qa --template-set flan --template-set ./mine
    """

    home = open_home(home_dir)
    total = len(open_dataset(home, source))
    with progress(f"templating {source}", total) as update:
        card = run(
            home,
            source,
            name,
            template_sets=template_sets,
            task=task,
            shots=shots,
            mix=mix,
            seed=seed,
            options=options,
            variables=variables,
            shot_style=shot_style,
            system=system,
            pool_size=pool_size,
            overwrite=overwrite,
            progress=update,
        )
    if as_json:
        click.echo(json.dumps(card, indent=2, ensure_ascii=False))
        return
    used = sum(1 for n in card["rows_per_template"].values() if n)
    few = f"; {card['few_shot_rows']} few-shot with {shots} exemplars" if shots else ""
    click.echo(
        f"wrote {name}: {card['rows']} chat rows from {source} (task {card['task']}, "
        f"{used} of {len(card['rows_per_template'])} templates used{few})"
    )
    if card["options"]:
        click.echo(f"options: {', '.join(card['options'])}")
    if card["rejected"]:
        reasons = ", ".join(f"{r}: {n}" for r, n in card["rejected_by_reason"].items())
        click.echo(
            f"rejected {card['rejected']} rows ({reasons}); see "
            f"{home.path / 'datasets' / name / 'rejected.jsonl'}",
            err=True,
        )
