"""`tllm data list` and `tllm data show`."""

from __future__ import annotations

import json
from itertools import islice

import click

from ...data.store import list_datasets, open_dataset
from ..common import home_options, open_home

RAW_SHOWN = 500  # characters of a rejected row's source text that `show --rejected` prints


@click.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print every dataset's card as JSON.")
@home_options
def list_(as_json, home_dir):
    """List the datasets in the home: name, kind, rows, rejected rows and source.

    \b
    Examples:
      tllm data list
      tllm data list --json
    """

    datasets = list_datasets(open_home(home_dir))
    if as_json:
        click.echo(json.dumps([d.card for d in datasets], indent=2, ensure_ascii=False))
        return
    if not datasets:
        click.echo(
            "no datasets yet: import one with `tllm data import FILE --kind KIND --name NAME`"
        )
        return
    width = max(4, *(len(d.name) for d in datasets))
    click.echo(f"{'NAME':<{width}}  {'KIND':<14} {'ROWS':>9} {'REJECTED':>9}  SOURCE")
    for d in datasets:
        card = d.card
        split = "  (split)" if d.has_splits else ""
        click.echo(
            f"{d.name:<{width}}  {d.kind:<14} {card.get('rows', 0):>9} "
            f"{card.get('rejected', 0):>9}  {card.get('source', '')}{split}"
        )


@click.command()
@click.argument("name")
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="How many rows to show.",
)
@click.option(
    "--rejected", is_flag=True, help="Show the rejected rows (line, reason, source text) instead."
)
@click.option("--json", "as_json", is_flag=True, help="Print the card and the rows as JSON.")
@home_options
def show(name, limit, rejected, as_json, home_dir):
    """Show dataset NAME: its card, then its first rows (or its first rejected rows).

    \b
    Examples:
      tllm data show mine
      tllm data show mine --limit 20
      tllm data show mine --rejected
      tllm data show mine --limit 1 --json
    """

    dataset = open_dataset(open_home(home_dir), name)
    rows = list(islice(dataset.rejected() if rejected else dataset.rows(), limit))
    if as_json:
        click.echo(
            json.dumps(
                {"card": dataset.card, "rejected" if rejected else "rows": rows},
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    for key, value in dataset.card.items():
        click.echo(f"{key + ':':<20} {_card_value(value)}")
    total = dataset.card.get("rejected" if rejected else "rows", len(rows))
    what = "rejected rows" if rejected else "rows"
    click.echo(f"\nfirst {len(rows)} of {total} {what}:" if rows else f"\nno {what}")
    for i, row in enumerate(rows, 1):
        click.echo(f"[{i}]")
        click.echo(_rejected_text(row) if rejected else _row_text(row))


def _card_value(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    if value is None:
        return "-"
    return str(value)


def _indented(text, prefix: str) -> str:
    """A value on one or more lines, continuation lines under the first one's start."""
    first, *rest = str(text).split("\n")
    pad = " " * len(prefix)
    return "\n".join([first, *(pad + line if line else "" for line in rest)])


def _is_messages(value) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and "role" in m for m in value)
    )


def _row_text(row: dict) -> str:
    """A canonical row for reading: each message as 'role: content', other fields 'key: value'."""
    lines = []
    for key, value in row.items():
        if _is_messages(value):
            indent = "  " if key == "messages" else "    "
            if key != "messages":
                lines.append(f"  {key}:")
            for message in value:
                prefix = f"{indent}{message['role']}: "
                lines.append(prefix + _indented(message.get("content"), prefix))
        else:
            prefix = f"  {key}: "
            lines.append(prefix + _indented(value, prefix))
    return "\n".join(lines)


def _rejected_text(bad: dict) -> str:
    line = bad.get("line")
    where = f"line {line}" if isinstance(line, int) else str(line)
    raw = bad.get("row")
    if raw is not None and not isinstance(raw, str):
        raw = json.dumps(raw, ensure_ascii=False)
    text = f"  {where}: {bad.get('reason')}: {bad.get('detail')}"
    if raw:
        cut = f" ... ({len(raw) - RAW_SHOWN} more characters)" if len(raw) > RAW_SHOWN else ""
        text += "\n  row: " + _indented(raw[:RAW_SHOWN], "  row: ") + cut
    return text
