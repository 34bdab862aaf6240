"""`tllm chat`: a multi-turn conversation in the terminal, or over a pipe."""

from __future__ import annotations

import json
import sys

import click

from ..agent.session import agent_options
from ..engine.conversation import Conversation
from ..errors import TllmError
from .common import engine_options, home_options, open_home, sampling_options, sampling_params
from .knowledge import cited, echo_sources, knowledge_option, retrieve_into

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
@knowledge_option
@agent_options
@home_options
def chat(system, as_json, model, adapter, engine, use_knowledge, agent, max_steps, home_dir,
         **sampling):
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
    home = open_home(home_dir)
    config = home.load_config()
    params = sampling_params(config, **sampling)
    from ..engine.select import open_engine

    llm = open_engine(home, config, model=model, adapter=adapter, engine=engine)
    from ..knowledge.retrieve import open_retriever

    retriever = None if agent else open_retriever(home, config, use_knowledge)  # agent: a tool
    interactive = sys.stdin.isatty()
    if interactive:
        import readline  # noqa: F401  (line editing and arrow-key history for input())

        click.echo(f"{config.name} on {llm.model_name} ({llm.name}). /help for commands, /exit to leave.")
    talk = Conversation(config.system_prompt if system is None else system)
    if agent:
        from ..agent.session import chat_agent

        talk = chat_agent(home, config, llm, talk.system, sampling, max_steps, as_json)
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
            asked, sources = retrieve_into(retriever, config, [{"role": "user", "content": line}], line)
            answer = _answer(llm, talk, asked[-1]["content"], params, as_json, sources, line)
        except TllmError as exc:  # e.g. a message too long for the context; the chat goes on
            click.echo(f"error: {exc}", err=True)
            continue
        except KeyboardInterrupt:
            if not interactive:
                raise
            click.echo("\n(answer stopped)")  # Ctrl-C stops this answer, not the chat
            continue
        talk.record(answer)
        if sources:  # the history keeps the question, not this turn's retrieved sources
            talk.turns[-2] = {"role": "user", "content": line}


def _answer(llm, talk: Conversation, text: str, params, as_json: bool,
            sources: list | None = None, question: str = "") -> str:
    """Print the answer to `text` (streamed, or as one JSON line) and return its text;
    with knowledge, the sources it cites after it (in the JSON line: `sources`)."""
    generation = talk.ask(llm, text, params)
    if as_json:
        completion = generation.run()
        shown = completion.to_dict()
        if sources is not None:  # knowledge is on
            shown["sources"] = [s.to_dict() for s in cited(completion.text, sources, question)]
        click.echo(json.dumps(shown, ensure_ascii=False))
        return completion.text
    for piece in generation:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    sys.stdout.flush()
    echo_sources(cited(generation.completion.text, sources, question))
    return generation.completion.text
