"""`tllm data clean` and `tllm data split`."""

from __future__ import annotations

import json

import click

from ...data.clean import CleanSettings, clean_dataset
from ...data.split import split_dataset
from ...data.store import open_dataset
from ...settings_kit import click_options, from_options
from ..common import home_options, open_home
from .progress import progress


@click.command()
@click.argument("name")
@click.option("--out", required=True, help="Name of the new, cleaned dataset.")
@click_options(CleanSettings)
@click.option("--overwrite", is_flag=True, help="Replace dataset --out if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the new dataset's card as JSON.")
@home_options
def clean(name, out, overwrite, as_json, home_dir, **flags):
    """Repair, filter and deduplicate dataset NAME into a new dataset (--out).

    Rules run in this order: fix unicode, normalize whitespace (both on unless turned
    off), then the filters asked for: characters, --drop/--keep patterns, tokens,
    language, exact duplicates, near duplicates. Every removed row goes to the new
    dataset's rejected.jsonl with its line and reason; the card counts each rule.

    \b
    Examples:
      tllm data clean mine --dedup --out mine-clean
      tllm data clean mine --min-chars 20 --max-tokens 1024 --lang en --out mine-en
      tllm data clean mine --drop '(?i)as an ai language model' --out mine-clean
      tllm data clean mine --dedup --near-dup-threshold 0.9 --json --out mine-clean
    """

    if flags["near_dup"] is False and not flags["dedup"]:
        raise click.UsageError("--no-near-dup only makes sense with --dedup")
    home = open_home(home_dir)
    settings = from_options(CleanSettings, flags).check()
    total = len(open_dataset(home, name))
    with progress(f"cleaning {name}", total) as update:
        card = clean_dataset(home, name, out, settings, overwrite=overwrite, progress=update)
    if as_json:
        click.echo(json.dumps(card, indent=2, ensure_ascii=False))
        return
    read = card["cleaned_from"]["rows"]
    click.echo(f"{name} -> {out}: kept {card['rows']} of {read} rows, removed {card['rejected']}")
    click.echo(f"  {'rule':<22} {'changed':>8} {'removed':>8}")
    for rule in card["rules"]:
        changed = card["modified_by_rule"].get(rule, "-")
        removed = card["removed_by_rule"].get(rule, "-")
        click.echo(f"  {rule:<22} {changed:>8} {removed:>8}")
    for rule, removed in card["removed_by_rule"].items():
        if rule not in card["rules"]:  # rows a rewrite made invalid
            click.echo(f"  {rule:<22} {'-':>8} {removed:>8}")
    if card["rejected"]:
        click.echo(f"removed rows and why: {open_dataset(home, out).folder / 'rejected.jsonl'}")


@click.command()
@click.argument("name")
@click.option(
    "--eval",
    "eval_spec",
    default="0.1",
    show_default=True,
    help="Eval share: a fraction below 1 (0.1: a tenth) or a whole number of rows "
    "(50; 1 is one row).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Shuffle seed: same seed, same split."
)
@click.option("--json", "as_json", is_flag=True, help="Print the split as JSON.")
@home_options
def split(name, eval_spec, seed, as_json, home_dir):
    """Shuffle dataset NAME into train.jsonl and eval.jsonl (replacing an earlier split).

    \b
    Examples:
      tllm data split mine --eval 0.1 --seed 0
      tllm data split mine --eval 200          # exactly 200 eval rows
    """

    result = split_dataset(open_home(home_dir), name, eval_spec, seed)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{name}: {result['train']} train rows, {result['eval']} eval rows (seed {seed})")
