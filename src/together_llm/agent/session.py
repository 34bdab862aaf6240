"""The agent behind `tllm ask --agent` and `tllm chat --agent`: which tools, which
sampling, how steps are shown, and a chat that remembers earlier answers."""

from __future__ import annotations

import json

import click

from ..engine.protocol import Engine
from ..errors import ContextError
from .builtin_tools import default_tools
from .react import AgentResult, ReActAgent, Step

DEFAULT_STEPS = 5


def agent_sampling(config, sampling: dict):
    """Sampling for agent steps: greedy unless --temperature is given, because each step is
    a decision (which tool, which arguments) and small models decide best greedily."""
    from ..cli.common import sampling_params

    given = dict(sampling)
    if given.get("temperature") is None:
        given["temperature"] = 0.0
    return sampling_params(config, **given)


STEP_LABELS = {"thought": "Thought", "action": "Action", "observation": "Observation"}


def step_line(step: Step, bold: bool = False, escape=str) -> str:
    """A step as one line: "Action: calculator {...}" in the terminal; the web chat makes
    the label bold and escapes the text (`escape`)."""
    label = STEP_LABELS.get(step.kind, "Final Answer")
    text = f"{escape(step.tool)} {escape(step.text)}" if step.kind == "action" else escape(step.text)
    return f"**{label}:** {text}" if bold else f"{label}: {text}"


def make_agent(home, llm: Engine, params, system: str, max_steps: int = DEFAULT_STEPS,
               show_steps: bool = True) -> ReActAgent:
    """An agent with the built-in tools and the home's tools.py; each step is printed to
    standard error as it happens (standard output keeps the answer alone)."""
    def show(step: Step) -> None:
        if show_steps and step.kind != "answer":
            click.secho(step_line(step), err=True, dim=step.kind == "thought")

    return ReActAgent(llm, default_tools(home), params, system=system, max_steps=max_steps,
                      on_step=show)


def print_result(result: AgentResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        click.echo(result.answer)


class AgentChat:
    """A conversation with the agent, in the shape `tllm chat` uses a `Conversation`:
    `ask` answers with a ReAct run that sees the earlier questions and final answers (not
    their tool steps, which would crowd the context), `record` keeps the exchange, and the
    oldest exchanges are forgotten when the context fills."""

    def __init__(self, agent: ReActAgent):
        self.agent = agent
        self.turns: list[dict] = []
        self._pending: list[dict] | None = None

    @property
    def system(self) -> str:
        return self.agent.system

    def reset(self, system: str | None = None) -> None:
        if system is not None:
            self.agent.system = system
        self.turns, self._pending = [], None

    def ask(self, engine, text: str, params) -> "AgentAnswer":
        """The agent's answer to `text`; its steps are shown while it works."""
        turns = self.turns
        while True:
            try:
                result = self.agent.run(text, history=turns)
                break
            except ContextError:
                if not turns:
                    raise
                turns = turns[2:]  # forget the oldest exchange and try again
        self._pending = turns + [{"role": "user", "content": text}]
        return AgentAnswer(result)

    def record(self, answer: str) -> None:
        if self._pending is not None:
            self.turns = self._pending + [{"role": "assistant", "content": answer}]
            self._pending = None


class AgentAnswer:
    """A finished agent run that reads like a `Generation`: iterate for the answer text,
    `.run()` / `.completion` for it as a Completion (token counts are not tracked)."""

    def __init__(self, result: AgentResult):
        from ..engine.protocol import Completion, Usage

        self.result = result
        self.completion = Completion(result.answer, Usage(0, 0),
                                     "stop" if result.finished else "length")

    def __iter__(self):
        yield self.result.answer

    def run(self):
        return self.completion


def chat_agent(home, config, llm: Engine, system: str, sampling: dict, max_steps: int,
               as_json: bool) -> AgentChat:
    """The conversation `tllm chat --agent` talks to."""
    agent = make_agent(home, llm, agent_sampling(config, sampling), system, max_steps,
                       show_steps=not as_json)
    return AgentChat(agent)


def agent_options(func):
    """`--agent` and `--max-steps` for ask and chat."""
    func = click.option("--max-steps", type=click.IntRange(1, 20), default=DEFAULT_STEPS,
                        show_default=True, help="With --agent: most tool steps per answer.")(func)
    return click.option("--agent", is_flag=True,
                        help="Answer as a ReAct agent with tools (calculator, knowledge_search, "
                             "now, and your home's tools.py), showing each step.")(func)


def ask_with_agent(home, config, llm: Engine, prompt: str, system: str, sampling: dict,
                   as_json: bool, max_steps: int) -> None:
    """`tllm ask --agent`: steps on standard error as they happen, the answer on standard
    output (or everything as one JSON object with --json)."""
    agent = make_agent(home, llm, agent_sampling(config, sampling), system, max_steps,
                       show_steps=not as_json)
    print_result(agent.run(prompt), as_json)
