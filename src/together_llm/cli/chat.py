"""`tllm chat`: a multi-turn conversation in the terminal, or over a pipe."""

from __future__ import annotations

import json
import sys

import click

from ..errors import TllmError
from .common import engine_options, home_options, open_home, sampling_options, sampling_params

HELP = """commands:
  /reset         forget the conversation (keeps the system prompt)
  /system TEXT   set the system prompt and start over
  /exit          leave (also /quit, Ctrl-D)
  /help          this text"""


class Conversation:
    """The messages so far; the oldest turns are dropped when the context fills up."""

    def __init__(self, system: str):
        self.system = system
        self.turns: list[dict] = []

    def messages(self) -> list[dict]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.turns

    def reset(self, system: str | None = None) -> None:
        if system is not None:
            self.system = system
        self.turns = []


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
                click.echo(HELP if command == "/help" else f"unknown command {command}; /help lists them")
            continue
        talk.turns.append({"role": "user", "content": line})
        try:
            answer = _answer(llm, talk, params, as_json)
        except TllmError as exc:
            talk.turns.pop()  # the message could not be answered; the chat goes on
            click.echo(f"error: {exc}", err=True)
            continue
        except KeyboardInterrupt:
            if not interactive:
                raise
            talk.turns.pop()  # Ctrl-C stops this answer, not the chat
            click.echo("\n(answer stopped)")
            continue
        talk.turns.append({"role": "assistant", "content": answer})


def _answer(llm, talk: Conversation, params, as_json: bool) -> str:
    """Stream one answer, dropping the oldest turns if the conversation outgrew the context."""
    while True:
        try:
            generation = llm.chat(talk.messages(), params)
            break
        except TllmError:
            if len(talk.turns) <= 1:
                raise
            del talk.turns[:2]  # forget the oldest exchange and try again
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
