"""An answer in the terminal, for `tllm ask` and `tllm chat`: the text streamed to standard
output, the agent's steps to standard error as they happen (standard output keeps the answer
alone), the cited sources after it; or the whole answer as one JSON object (--json). Also
the `--agent` options the two commands share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO

import click

from ..agent.presets import DEFAULT_STEPS, step_line
from ..assistant.answer import (
    AgentStep,
    AnswerOptions,
    Assistant,
    CitedSources,
    Event,
    Finished,
    TextPiece,
)
from ..engine.choice import open_engine
from ..engine.protocol import Engine
from ..knowledge.prompt import format_sources
from .common import open_home


def agent_options(func):
    """`--agent` and `--max-steps` for ask and chat."""
    func = click.option(
        "--max-steps",
        type=click.IntRange(1, 20),
        default=DEFAULT_STEPS,
        show_default=True,
        help="With --agent: most tool steps per answer.",
    )(func)
    return click.option(
        "--agent",
        is_flag=True,
        help="Answer as a ReAct agent with tools (calculator, knowledge_search, "
        "now, and your home's tools.py), showing each step.",
    )(func)


def open_assistant(
    home_dir: str | None,
    options: AnswerOptions,
    model: str | None,
    adapter: str | None,
    engine: str | None,
) -> tuple[Assistant, Engine]:
    """The home's assistant and the engine that answers. With knowledge on, the documents'
    index opens first, so a knowledge problem is told before a model loads."""
    home = open_home(home_dir)
    config = home.load_config()
    assistant = Assistant(home, config)
    if assistant.knowledge_on(options):
        assistant.grounding.open()
    return assistant, open_engine(home, config, model=model, adapter=adapter, engine=engine)


def show_answer(events: Iterable[Event], out: IO[str]) -> Finished:
    """Print the answer as it comes, then the sources it cites; return how it finished."""
    cited: list = []
    for event in events:
        if isinstance(event, TextPiece):
            out.write(event.text)
            out.flush()
        elif isinstance(event, AgentStep) and event.step.kind != "answer":
            click.secho(step_line(event.step), err=True, dim=event.step.kind == "thought")
        elif isinstance(event, CitedSources):
            cited = event.sources
        elif isinstance(event, Finished):
            out.write("\n")
            out.flush()
            if cited:
                click.echo(format_sources(cited))
            return event
    raise AssertionError("an answer always finishes")


def as_record(events: Iterable[Event], agent_run: bool = True) -> tuple[dict, Finished]:
    """The whole answer as one JSON object: {text, usage, finish_reason}, with `sources`
    when knowledge is on; with `agent_run`, an agent's run as {answer, finished, steps}."""
    sources = None
    for event in events:
        if isinstance(event, CitedSources):
            sources = [source.to_dict() for source in event.sources]
        elif isinstance(event, Finished):
            if agent_run and event.agent is not None:
                return event.agent.to_dict(), event
            record = event.completion.to_dict()
            if sources is not None:
                record["sources"] = sources
            return record, event
    raise AssertionError("an answer always finishes")
