"""`tllm chat`: a multi-turn conversation in the terminal, or over a pipe."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import click

from ..assistant.answer import AnswerOptions
from ..errors import TllmError
from .answer_output import agent_options, as_record, open_assistant, show_answer
from .common import engine_options, home_options, sampling_flags, sampling_options
from .knowledge import knowledge_option

HELP = """commands:
  /reset         forget the conversation (keeps the system prompt)
  /system TEXT   set the system prompt and start over
  /exit          leave (also /quit, Ctrl-D)
  /help          this text"""


def _read_line(interactive: bool) -> str | None:
    try:
        return input(">>> ") if interactive else sys.stdin.readline() or None
    except EOFError:
        return None


@click.command()
@click.option("--system", "-s", help="System prompt (default: assistant.yaml's system_prompt).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print each answer as one JSON line {text, usage, finish_reason} (for scripts).",
)
@sampling_options
@engine_options
@knowledge_option
@agent_options
@home_options
def chat(
    system, as_json, model, adapter, engine, use_knowledge, agent, max_steps, home_dir, **sampling
):
    """Talk with the assistant: streaming answers, history, /reset, /system TEXT, /exit.

    Reads one message a line; works with piped input too.

    \b
    Examples:
      tllm chat
      tllm chat --temperature 0.2 --system "Answer in one sentence."
      printf 'Hi\\n/reset\\nWhat is 2+2?\\n' | tllm chat --json
      tllm chat --knowledge          # answers from your documents, sources listed
      tllm chat --agent              # a ReAct agent with tools, steps shown
    """
    options = AnswerOptions(
        system=system,
        knowledge=use_knowledge,
        agent=agent,
        max_steps=max_steps,
        sampling=sampling_flags(sampling),
        forget_oldest=True,
    )
    assistant, llm = open_assistant(home_dir, options, model, adapter, engine)

    interactive = sys.stdin.isatty()
    if interactive:
        name = assistant.config.name
        click.echo(f"{name} on {llm.model_name} ({llm.name}). /help for commands, /exit to leave.")
    turns: list[dict] = []  # the questions and answers so far (never the retrieved sources)
    while (line := _read_line(interactive)) is not None:
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            command, _, rest = line.partition(" ")
            if command in ("/exit", "/quit"):
                break
            if command == "/reset":
                turns = []
                click.echo("(conversation cleared)", err=not interactive)
            elif command == "/system":
                turns, options = [], replace(options, system=rest.strip())
                click.echo("(system prompt set; conversation cleared)", err=not interactive)
            else:
                click.echo(
                    HELP if command == "/help" else f"unknown command {command}; /help lists them",
                    err=not interactive,
                )  # keeps piped output (--json) clean
            continue
        events = assistant.answer(llm, [*turns, {"role": "user", "content": line}], options)
        try:
            if as_json:
                record, finished = as_record(events, agent_run=False)
                click.echo(json.dumps(record, ensure_ascii=False))
            else:
                finished = show_answer(events, sys.stdout)
        except TllmError as exc:  # e.g. a message too long for the context; the chat goes on
            click.echo(f"error: {exc}", err=True)
            continue
        except KeyboardInterrupt:
            if not interactive:
                raise
            click.echo("\n(answer stopped)")  # Ctrl-C stops this answer, not the chat
            continue
        # what the answer saw (the oldest exchanges may have been left out), and the answer
        turns = [*finished.conversation, {"role": "assistant", "content": finished.completion.text}]
