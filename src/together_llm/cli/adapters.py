"""`tllm adapters`: the adapters in the home (list, show, use), exchanged with peers (export,
import) and merged."""

from __future__ import annotations

import json

import click

from ..adapters.card import Improved
from ..adapters.exchange import export_adapter, import_adapter
from ..adapters.gguf_form import serving_engine
from ..adapters.merge import merge_adapters
from ..adapters.store import adapter_dir, adapter_summary, list_adapters, read_card
from ..errors import TllmError
from ..learn.versions import Versions, parse_version
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
      tllm adapters export facts facts.tar
      tllm adapters import peer-facts.tar --name peer-facts
      tllm adapters merge facts peer-facts --method ties --name both
      tllm adapters history me       # the versions tllm improve adopted
      tllm adapters rollback me@2
    """


@adapters.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@home_options
def list_(as_json, home_dir):
    """List the adapters; * marks the active ones."""

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
        facts = "  ".join(
            f"{k}={r[k]}" for k in ("method", "stage", "data", "steps") if r[k] is not None
        )
        size = f"({r['bytes'] / 1e6:.1f} MB)" if r["bytes"] is not None else ""
        problem = f"  UNUSABLE: {r['problem']}" if r["problem"] else ""
        click.echo(f"{mark} {r['name']:<20} {facts}  {size}{problem}")


@adapters.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@home_options
def show(name, as_json, home_dir):
    """Show adapter NAME's card: base model, method, stage, data, steps, metrics."""

    home = open_home(home_dir)
    card = read_card(home, name)
    details = {"name": name, "path": str(adapter_dir(home, name)), **card.to_dict()}
    details["engine"] = serving_engine(home, name, card.base)
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

    if bool(names) == clear:
        raise TllmError("name the adapter(s) to use, or give --none for the base model")
    home = open_home(home_dir)
    for name in names:
        stage = read_card(home, name).stage  # refuses unknown names and unsafe weights
        if stage in NOT_ANSWERING:
            raise TllmError(
                f"adapter {name!r} is {NOT_ANSWERING[stage]}, not a chat model: it "
                "cannot answer in ask, chat or serve"
            )
    config = home.load_config()
    config.adapters = list(names)
    home.save_config(config)
    click.echo(
        f"active adapters: {', '.join(names)}"
        if names
        else "no active adapter: the base model answers"
    )


@adapters.command()
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--overwrite", is_flag=True, help="Replace FILE if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@home_options
def export(name, file, overwrite, as_json, home_dir):
    """Write adapter NAME to FILE, an archive a peer can `tllm adapters import`.

    \b
    The archive (plain tar) holds the safetensors weights, adapter_config.json, card.json
    (with the base model's fingerprint) and a manifest of their SHA-256 checksums. A folder
    as FILE gets NAME.tar inside it. Share the printed sha256 with the peer out of band so
    that they can check it on import (--sha256).

    \b
    Example:
      tllm adapters export facts ~/share/facts.tar
    """

    result = export_adapter(open_home(home_dir), name, file, overwrite=overwrite)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"exported {name} to {result['path']} ({result['bytes']} bytes)")
    click.echo(f"sha256 {result['sha256']}")


@adapters.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--name", help="Name of the new adapter (default: the name it was exported under).")
@click.option("--sha256", help="Refuse the archive unless its SHA-256 is this (from the sender).")
@click.option("--json", "as_json", is_flag=True, help="Print the new adapter's card as JSON.")
@home_options
def import_(file, name, sha256, as_json, home_dir):
    """Check the adapter archive FILE and add it to the home's adapters.

    \b
    Nothing is loaded or kept before every check passes: only the four expected files, all
    regular, within size limits, no path leaving the folder; the manifest's checksums hold;
    safetensors weights only (never pickle); the card's base fingerprint matches a model of
    this home; every tensor is a LoRA weight of a module that base has, shaped to fit it.
    A refused archive leaves the home as it was and the reason is printed.

    \b
    Example:
      tllm adapters import peer-facts.tar --name peer-facts --sha256 3f9a...
    """

    report = lambda message: click.echo(message, err=True)  # noqa: E731
    card = import_adapter(open_home(home_dir), file, name=name, sha256=sha256, report=report)
    if as_json:
        click.echo(json.dumps(card.to_dict(), indent=2))
        return
    source = card.imported.source if card.imported else None  # always there after an import
    click.echo(
        f"imported adapter {card.name} (base {card.base}, {card.method}"
        f" {card.stage or ''}) from {source}"
    )
    click.echo(f"use it with: tllm adapters use {card.name}")


def _weights(ctx, param, value):
    if value is None:
        return None
    try:
        return [float(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: give comma-separated numbers, e.g. 0.5,0.5") from None


@adapters.command()
@click.argument("names", nargs=-1, required=True)
@click.option(
    "--method",
    required=True,
    type=click.Choice(("svd", "linear", "ties", "dare_ties", "dare_linear", "cat")),
    help="How to combine: svd (exact sum, refactored to the parents' rank), cat "
    "(exact, ranks add up), linear (cheap, approximate), ties, dare_ties, "
    "dare_linear (prune to --density, resolve sign conflicts).",
)
@click.option(
    "--weights",
    callback=_weights,
    help="One weight per adapter, comma-separated (default: 1/n each; 1 each for "
    "ties and dare_ties, which average themselves).",
)
@click.option(
    "--density",
    type=float,
    help="ties, dare_ties, dare_linear: fraction of each adapter's values kept (default 0.5).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="DARE's random pruning seed.")
@click.option("--name", required=True, help="Name of the merged adapter.")
@click.option("--overwrite", is_flag=True, help="Replace an existing adapter of that name.")
@home_options
def merge(names, method, weights, density, seed, name, overwrite, home_dir):
    """Merge adapters NAMES (LoRA, one base) into a new adapter with PEFT.

    \b
    The new adapter's card records its parents (with their own lineage), the method,
    weights and density, and the base fingerprint.

    \b
    Examples:
      tllm adapters merge facts peer-facts --method svd --name both
      tllm adapters merge a b c --method ties --density 0.7 --name abc
      tllm adapters merge a b --method linear --weights 0.7,0.3 --name mostly-a
    """

    card = merge_adapters(
        open_home(home_dir),
        list(names),
        method,
        name,
        weights=weights,
        density=density,
        seed=seed,
        overwrite=overwrite,
        report=click.echo,
    )
    parents = ", ".join(str(p.name) for p in card.parents or [])
    used = card.merge.weights if card.merge else None  # a merged card always has its merge
    click.echo(
        f"merged {parents} with {method} (weights {used}) into adapter {name}, rank {card.rank}"
    )


@adapters.command()
@click.argument("name", default="me")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@home_options
def history(name, as_json, home_dir):
    """The versions of adapter NAME that `tllm improve` adopted; * marks the current one."""
    versions = Versions(open_home(home_dir), name)
    current = versions.current()
    rows = []
    for number in versions.numbers():
        card = versions.card(number)
        improved = card.improved or Improved()
        rows.append(
            {
                "version": f"{name}@{number}",
                "current": number == current,
                "created": card.created,
                "parent": f"{name}@{improved.parent}" if improved.parent else "base",
                "memories": improved.memories or [],
                "new": improved.new or [],
                "forgotten": improved.forgotten or [],
                "corrections_to_line": improved.corrections,
                "scores": improved.scores or {},
                "run": improved.run,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no versions of {name!r} yet: `tllm remember ...` then `tllm improve`")
    for row in rows:
        scores = "  ".join(f"{k} {100 * v:.0f}%" for k, v in row["scores"].items() if v is not None)
        learned = f"learned {', '.join('#' + i for i in row['new'])}" if row["new"] else ""
        unlearned = (
            f"forgot {', '.join('#' + i for i in row['forgotten'])}" if row["forgotten"] else ""
        )
        fixes = row["corrections_to_line"]
        corrected = f"corrections to line {fixes}" if fixes else ""
        mark = "*" if row["current"] else " "
        click.echo(
            f"{mark} {row['version']:<10} {row['created']}  from {row['parent']:<8} "
            + "  ".join(part for part in (learned, unlearned, corrected, scores) if part)
        )


@adapters.command()
@click.argument("version")
@home_options
def rollback(version, home_dir):
    """Make VERSION (ADAPTER@N, from `tllm adapters history`) the one that answers again,
    exactly as it was adopted; later versions are kept (roll forward the same way)."""
    name, number = parse_version(version)
    versions = Versions(open_home(home_dir), name)
    versions.rollback(number)
    click.echo(f"{name} is now {name}@{number}")
