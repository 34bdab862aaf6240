"""The ReAct agent as the assistant uses it (assistant/answer.py): its tools and its steps
as lines. No terminal here: cli/answer_output.py prints the steps, the web chat shows them."""

from __future__ import annotations

from collections.abc import Callable

from ..engine.protocol import Engine
from ..sampling import SamplingParams
from .builtin_tools import default_tools
from .react import ReActAgent, Step

DEFAULT_STEPS = 5


STEP_LABELS = {"thought": "Thought", "action": "Action", "observation": "Observation"}


def step_line(step: Step, bold: bool = False, escape=str) -> str:
    """A step as one line: "Action: calculator {...}" in the terminal; the web chat makes
    the label bold and escapes the text (`escape`)."""
    label = STEP_LABELS.get(step.kind, "Final Answer")
    text = (
        f"{escape(step.tool)} {escape(step.text)}" if step.kind == "action" else escape(step.text)
    )
    return f"**{label}:** {text}" if bold else f"{label}: {text}"


def make_agent(
    home,
    llm: Engine,
    params: SamplingParams,
    system: str,
    max_steps: int = DEFAULT_STEPS,
    on_step: Callable[[Step], None] | None = None,
) -> ReActAgent:
    """An agent with the built-in tools and the home's tools.py; `on_step` sees each step
    as it happens."""
    return ReActAgent(
        llm, default_tools(home), params, system=system, max_steps=max_steps, on_step=on_step
    )
