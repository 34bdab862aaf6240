"""`tllm adapters`: the adapters in the home (list, show, use)."""

from __future__ import annotations

import json

import click

from .common import home_options, open_home


@click.group()
def adapters():
    """Adapters: what training produced, and which one the assistant uses.

    \b
    Examples:
      tllm adapters list
      tllm adapters show facts
      tllm adapters use facts        # ask, chat and serve now answer with it
      tllm adapters use --none       # back to the base model
    """


@adapters.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@home_options
def list_(as_json, home_dir):
    """List the adapters; * marks the active ones."""
    from ..adapters.store import adapter_summary, list_adapters

    home = open_home(home_dir)
    active = set(home.load_config().adapters)
    rows = [adapter_summary(home, name) for name in list_adapters(home)]
    if as_json:
        click.echo(json.dumps([{**r, "active": r["name"] in active} for r in rows], indent=2))
        return
    if not rows:
        click.echo("no adapters yet: train one with `tllm train --stage sft --method lora ...`")
        return
    for r in rows:
        mark = "*" if r["name"] in active else " "
        facts = "  ".join(f"{k}={r[k]}" for k in ("method", "stage", "data", "steps") if r[k] is not None)
        size = f"({r['bytes'] / 1e6:.1f} MB)" if r["bytes"] is not None else ""
        problem = f"  UNUSABLE: {r['problem']}" if r["problem"] else ""
        click.echo(f"{mark} {r['name']:<20} {facts}  {size}{problem}")


@adapters.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@home_options
def show(name, as_json, home_dir):
    """Show adapter NAME's card: base model, method, stage, data, steps, metrics."""
    from ..adapters.store import adapter_dir, read_card

    home = open_home(home_dir)
    details = {"name": name, "path": str(adapter_dir(home, name)), **read_card(home, name)}
    if as_json:
        click.echo(json.dumps(details, indent=2))
        return
    for key, value in details.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        click.echo(f"{key:<18} {value}")


# Stages whose adapters score or label text rather than write it.
NOT_ANSWERING = {"rm": "a reward model (a scalar score head)", "classify": "a classifier"}


@adapters.command()
@click.argument("names", nargs=-1)
@click.option("--none", "clear", is_flag=True, help="Use no adapter: answer with the base model.")
@home_options
def use(names, clear, home_dir):
    """Make NAMES the assistant's active adapter(s) for ask, chat and serve."""
    from ..adapters.store import read_card
    from ..errors import TllmError

    if bool(names) == clear:
        raise TllmError("name the adapter(s) to use, or give --none for the base model")
    home = open_home(home_dir)
    for name in names:
        stage = read_card(home, name).get("stage")  # refuses unknown names and unsafe weights
        if stage in NOT_ANSWERING:
            raise TllmError(f"adapter {name!r} is {NOT_ANSWERING[stage]}, not a chat model: it "
                            "cannot answer in ask, chat or serve")
    config = home.load_config()
    config.adapters = list(names)
    home.save_config(config)
    click.echo(f"active adapters: {', '.join(names)}" if names else "no active adapter: the base model answers")
