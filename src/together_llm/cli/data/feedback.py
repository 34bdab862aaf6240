"""`tllm data from-feedback`: ratings, A/B choices and corrections into datasets."""

from __future__ import annotations

import json

import click

from ...data.from_feedback import from_feedback as run
from ..common import home_options, open_home


@click.command()
@click.option(
    "--name",
    required=True,
    help="Base name: ratings become NAME-kto (kind feedback), A/B choices and corrections "
    "NAME-dpo (kind preference), corrections NAME-sft (kind chat).",
)
@click.option("--overwrite", is_flag=True, help="Replace NAME-kto/-dpo/-sft if they exist.")
@click.option("--json", "as_json", is_flag=True, help="Print the new datasets' cards as JSON.")
@home_options
def from_feedback(name, overwrite, as_json, home_dir):
    """Turn the home's feedback into KTO, DPO and SFT datasets.

    Reads feedback/ratings.jsonl (thumbs up/down on an answer) into NAME-kto, rows
    {prompt, completion, label}; feedback/choices.jsonl (the better of two answers, and
    every correction over the answer it corrected) into NAME-dpo, rows {prompt, chosen,
    rejected}; feedback/corrections.jsonl (the answer the person wanted) into NAME-sft,
    rows {messages}. The web chat of `tllm serve` and POST /v1/feedback write those files. A dataset with no rows is skipped, with a note;
    a line that cannot be used goes to the dataset's rejected.jsonl with its line number.

    \b
    Examples:
      tllm data from-feedback --name mine          # writes mine-kto, mine-dpo, mine-sft
      tllm data from-feedback --name mine --overwrite --json
      tllm train --data mine-kto --stage kto --method lora --name liked
    """

    home = open_home(home_dir)
    cards = run(home, name, overwrite=overwrite, say=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(cards, indent=2, ensure_ascii=False))
        return
    for card in cards:
        counts = (
            f" ({card['liked']} liked, {card['disliked']} disliked)"
            if card["kind"] == "feedback"
            else ""
        )
        click.echo(f"wrote {card['name']}: {card['rows']} {card['kind']} rows{counts}")
        if card["rejected"]:
            reasons = ", ".join(f"{r}: {n}" for r, n in card["rejected_by_reason"].items())
            click.echo(
                f"rejected {card['rejected']} lines of {card['source']} ({reasons}); see "
                f"{home.path / 'datasets' / card['name'] / 'rejected.jsonl'}",
                err=True,
            )
