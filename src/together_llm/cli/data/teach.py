"""`tllm data teach`: mark datasets for `tllm improve` to teach (learn/taught_data.py)."""

from __future__ import annotations

import json

import click

from ...learn.taught_data import STAGE_OF_KIND, TeachMarks, marked_data
from ...learn.versions import Versions
from ..common import home_options, open_home


@click.command()
@click.argument("names", nargs=-1)
@click.option("--stop", is_flag=True, help="Stop teaching NAMES (nothing is unlearned).")
@click.option("--adapter", default="me", show_default=True, help="The assistant's adapter.")
@click.option("--json", "as_json", is_flag=True, help="Print the marked datasets as JSON.")
@home_options
def teach(names, stop, adapter, as_json, home_dir):
    """Mark datasets NAMES for the next `tllm improve`; without NAMES, list the marked ones
    and whether the current version learned them.

    A chat dataset's rows are learned beside memories and corrections (its eval split,
    or every fifth row, is held out to test them); a preference dataset's pairs join the
    A/B choices (dpo), a feedback dataset's rows the ratings (kto). A dataset changed
    since a version learned it is learned again.

    \b
    Examples:
      tllm data teach recipes-chat
      tllm improve
      tllm data teach                       # marked datasets, learned or waiting
      tllm data teach --stop recipes-chat
    """
    home = open_home(home_dir)
    marks = TeachMarks(home)
    for name in names:
        if stop:
            marks.unmark(name)
            click.echo(f"stopped teaching {name}; what a version learned from it stays")
        else:
            kind = marks.mark(name)
            click.echo(
                f"marked {name} ({kind}): the next tllm improve teaches it ({STAGE_OF_KIND[kind]})"
            )
    if names:
        return
    versions = Versions(home, adapter)
    current = versions.current()
    learned = (versions.improved(current).datasets or {}) if current else {}
    rows = [
        {
            "name": data.name,
            "kind": data.kind,
            "rows": len(data.rows),
            "held_out": len(data.held_out),
            "learned": learned.get(data.name) == data.fingerprint,
        }
        for data in marked_data(home)
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("no datasets marked for teaching: tllm data teach NAME")
    for row in [] if as_json else rows:
        state = f"learned by {adapter}@{current}" if row["learned"] else "waiting for tllm improve"
        click.echo(
            f"{row['name']:<24} {row['kind']:<10} {row['rows']} rows, "
            f"{row['held_out']} held out  {state}"
        )
