"""`tllm chat`: a multi-turn conversation in the terminal, or over a pipe."""

from __future__ import annotations

import json
import sys

import click

from ..engine.conversation import Conversation
from ..errors import TllmError
from .common import engine_options, home_options, open_home, sampling_options, sampling_params

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
@click.option("--json", "as_json", is_flag=True,
              help="Print each answer as one JSON line {text, usage, finish_reason} (for scripts).")
@sampling_options
@engine_options
@home_options
def chat(system, as_json, model, adapter, engine, home_dir, **sampling):
    """Talk with the assistant: streaming answers, history, /reset, /system TEXT, /exit.

    Reads one message a line; works with piped input too.

    \b
    Examples:
      tllm chat
      tllm chat --temperature 0.2 --system "Answer in one sentence."
      printf 'Hi\\n/reset\\nWhat is 2+2?\\n' | tllm chat --json
    """
    home = open_home(home_dir)
    config = home.load_config()
    params = sampling_params(config, **sampling)
    from ..engine.select import open_engine

    llm = open_engine(home, config, model=model, adapter=adapter, engine=engine)
    interactive = sys.stdin.isatty()
    if interactive:
        import readline  # noqa: F401  (line editing and arrow-key history for input())

        click.echo(f"{config.name} on {llm.model_name} ({llm.name}). /help for commands, /exit to leave.")
    talk = Conversation(config.system_prompt if system is None else system)
    while (line := _read_line(interactive)) is not None:
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            command, _, rest = line.partition(" ")
            if command in ("/exit", "/quit"):
                break
            if command == "/reset":
                talk.reset()
                click.echo("(conversation cleared)", err=not interactive)
            elif command == "/system":
                talk.reset(rest.strip())
                click.echo("(system prompt set; conversation cleared)", err=not interactive)
            else:
                click.echo(HELP if command == "/help" else f"unknown command {command}; /help lists them",
                           err=not interactive)  # keeps piped output (--json) clean
            continue
        try:
            answer = _answer(llm, talk, line, params, as_json)
        except TllmError as exc:  # e.g. a message too long for the context; the chat goes on
            click.echo(f"error: {exc}", err=True)
            continue
        except KeyboardInterrupt:
            if not interactive:
                raise
            click.echo("\n(answer stopped)")  # Ctrl-C stops this answer, not the chat
            continue
        talk.record(answer)


def _answer(llm, talk: Conversation, text: str, params, as_json: bool) -> str:
    """Print the answer to `text` (streamed, or as one JSON line) and return its text."""
    generation = talk.ask(llm, text, params)
    if as_json:
        completion = generation.run()
        click.echo(json.dumps(completion.to_dict(), ensure_ascii=False))
        return completion.text
    for piece in generation:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    sys.stdout.flush()
    return generation.completion.text
