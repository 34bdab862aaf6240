"""`tllm remember`, `tllm memories` and `tllm improve`: the personal loop."""

from __future__ import annotations

import json

import click

from ..learn.improve import ImproveOptions, improve
from ..learn.memories import Memory, MemoryStore
from ..learn.remember import remember as remember_memory
from ..learn.report import text_report
from .common import home_options, open_home


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


@click.command()
@click.argument("text", nargs=-1, required=True)
@click.option(
    "--teacher",
    default="default",
    show_default=True,
    help="Who writes more questions the memory answers: default (the home's model), a "
    "registered model name, or the URL of an OpenAI-compatible endpoint.",
)
@click.option("--no-teacher", is_flag=True, help="Only the built-in question patterns.")
@click.option(
    "--api-key",
    envvar="TLLM_TEACHER_API_KEY",
    help="URL teacher: the API key (or set TLLM_TEACHER_API_KEY); never written to disk.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the stored memory as JSON.")
@home_options
def remember(text, teacher, no_teacher, api_key, as_json, home_dir):
    """Tell the assistant something to remember; `tllm improve` teaches it.

    The memory is stored with the questions a person might ask about it (from built-in
    patterns and the teacher; a teacher's question whose answer does not hold the memory
    is dropped). A third of them are held out: improve tests on them.

    \b
    Examples:
      tllm remember "My dog is called Rex and she is a beagle."
      tllm remember --no-teacher "I was born in Hallstatt."
      tllm improve
    """
    home = open_home(home_dir)
    memory = remember_memory(
        home, " ".join(text), None if no_teacher else teacher, api_key, report=_echo_err
    )
    if as_json:
        click.echo(json.dumps(memory.to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(
        f"remembered #{memory.id}: {len(memory.train)} questions to learn from, "
        f"{len(memory.held_out)} held out; run `tllm improve` to teach it"
    )


@click.group()
def memories():
    """The memories the assistant was told (tllm remember).

    \b
    Examples:
      tllm memories list
      tllm memories show 3
      tllm memories forget 3      # the next `tllm improve` unlearns it
    """


@memories.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@home_options
def list_(as_json, home_dir):
    """List the memories."""
    found = MemoryStore(open_home(home_dir)).all()
    if as_json:
        click.echo(json.dumps([m.to_dict() for m in found], indent=2, ensure_ascii=False))
    elif not found:
        click.echo('no memories yet: tllm remember "..."')
    for memory in [] if as_json else found:
        click.echo(f"#{memory.id:<4} {memory.created}  {memory.text}")


@memories.command()
@click.argument("memory_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@home_options
def show(memory_id, as_json, home_dir):
    """Show a memory with the questions it is taught and tested with."""
    memory = MemoryStore(open_home(home_dir)).get(memory_id)
    if as_json:
        click.echo(json.dumps(memory.to_dict(), indent=2, ensure_ascii=False))
        return
    _show(memory)


def _show(memory: Memory) -> None:
    click.echo(f"#{memory.id} ({memory.created}): {memory.text}")
    click.echo(f"answer taught: {memory.answer}")
    for title, probes in (("taught with", memory.train), ("held out", memory.held_out)):
        click.echo(f"{title}:")
        for probe in probes:
            click.echo(f"  {probe.question}   [{probe.source}; key: {', '.join(probe.keys)}]")
    if memory.dropped:
        why = ", ".join(f"{n} {reason}" for reason, n in memory.dropped.items())
        click.echo(f"teacher questions dropped: {why}")


@memories.command()
@click.argument("memory_id")
@home_options
def forget(memory_id, home_dir):
    """Forget a memory: its rows are removed, and the next `tllm improve` unlearns it."""
    memory = MemoryStore(open_home(home_dir)).forget(memory_id)
    click.echo(f"forgot #{memory.id}: {memory.text}\nrun `tllm improve` to unlearn it")


@click.command(name="improve")
@click.option(
    "--adapter",
    default="me",
    show_default=True,
    help="The assistant's adapter that improves (its versions are ADAPTER@N).",
)
@click.option(
    "--max-regression",
    type=click.FloatRange(0, 1),
    default=0.15,
    show_default=True,
    help="Adopt only if the earlier memories and the general probes each drop by at most "
    "this fraction of their questions (0.15: what the loop promises to keep, 85%).",
)
@click.option(
    "--no-replay",
    is_flag=True,
    help="Train on the new rows alone (plain sequential fine-tuning; forgets more).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be trained, and train nothing.")
@click.option("--resume", is_flag=True, help="Continue an interrupted round's training.")
@click.option(
    "--seed", type=int, default=42, show_default=True, help="Replay sample and training seed."
)
@click.option("--json", "as_json", is_flag=True, help="Print the round's outcome as JSON.")
@home_options
def improve_command(adapter, max_regression, no_replay, dry_run, resume, seed, as_json, home_dir):
    """Teach the assistant what is new, keep what it knew, and adopt the result only if it
    is better.

    Gathers the memories the current version does not know and the corrections,
    A/B choices and ratings made since (in the web chat or POST /v1/feedback), trains a
    candidate on them (sft with a replay of earlier rows and everyday answers, then dpo
    on 4+ choices and kto on 4+ ratings of both kinds), compares it with the current
    version on held-out questions (new, earlier, general), and adopts it as the next
    version (ADAPTER@N) only when the new material improves and nothing regresses beyond
    --max-regression. The assistant then answers with it (tllm serve too, without a
    restart). Safe from cron: one round at a time per home.

    \b
    Examples:
      tllm improve
      tllm improve --dry-run
      tllm adapters history me
      tllm adapters rollback me@1
    """
    home = open_home(home_dir)
    options = ImproveOptions(adapter, max_regression, not no_replay, dry_run, resume, seed)
    outcome = improve(home, options, report=_echo_err, show_progress=not as_json)
    if as_json:
        click.echo(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False))
        return
    label = f"{adapter}@{outcome.current}" if outcome.current else "the base model"
    if outcome.fresh and outcome.current:
        label = f"the base model (unlearning what {label} knew)"
    if outcome.rows:
        click.echo(
            f"from {label}: {len(outcome.new)} new memories, {len(outcome.corrections)} new "
            f"corrections, {len(outcome.forgotten)} forgotten; rows {outcome.rows}"
            + (f"; stages {', '.join(outcome.stages)}" if outcome.stages else "")
            + (f"; trained in {outcome.train_seconds:.0f} s" if outcome.train_seconds else "")
        )
    if outcome.waiting:
        click.echo(f"waiting for more: {outcome.waiting}")
    click.echo(text_report(outcome.to_dict()))
    if outcome.run:
        click.echo(f"report: {home.path / 'learn' / 'runs' / outcome.run / 'report.html'}")
