"""The ReAct loop: Thought, Action, Action Input, Observation, ..., Final Answer.

The question goes in as a user turn; the agent's steps are written as one assistant turn
that grows: the model writes a thought and either an action with JSON arguments or a
final answer; we run the action and append `Observation: <result>`, and the model
continues from there. Each step is one generation.

On engines with grammars (llama.cpp) every step is held to `grammar.react_grammar`: the
action must name a real tool and its input must be JSON that fits the tool's schema, so
even a 135M-parameter model makes well-formed calls; the final answer is free text, so
whatever it reports it has read from the observations. The last allowed step may only be
a final answer, so the loop always ends with one. Other engines stop each step at
"Observation:" and the step is parsed leniently.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

from ..engine.protocol import Engine
from ..errors import TllmError
from ..sampling import SamplingParams
from .grammar import react_grammar
from .tools import ToolError, ToolRegistry

MAX_OBSERVATION = 1500  # characters of a tool's result shown to the model

INSTRUCTIONS = """You answer the user's question using tools. Tools:
{tools}

Write one step at a time, in this format:
Thought: what to do next
Action: a tool name
Action Input: the tool's arguments as JSON
Then you get an Observation with the tool's result. When the observation answers the question, write:
Thought: I know the answer.
Final Answer: the answer, taken from the observation"""

# One worked exchange, shown to the model as an earlier turn of the conversation: small
# models follow a pattern they have just seen far better than a description of it.
EXAMPLE = [
    {"role": "user", "content": "What is 23 * 19?"},
    {
        "role": "assistant",
        "content": "Thought: I should multiply with the calculator.\n"
        "Action: calculator\n"
        'Action Input: {"expression": "23 * 19"}\n'
        "Observation: 437\n"
        "Thought: I know the answer.\n"
        "Final Answer: 437",
    },
]


@dataclass
class Step:
    """One thing the agent did: kind is thought, action, observation or answer."""

    kind: str
    text: str
    tool: str | None = None
    arguments: dict | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class AgentResult:
    answer: str
    steps: list[Step] = field(default_factory=list)
    finished: bool = True  # False when the step limit came before a final answer

    def to_dict(self) -> dict:
        return {
            "answer": self.answer,
            "finished": self.finished,
            "steps": [s.to_dict() for s in self.steps],
        }


def describe_tools(tools: ToolRegistry) -> str:
    lines = []
    for tool in tools:
        args = {k: v.get("type", "value") for k, v in tool.parameters.get("properties", {}).items()}
        lines.append(f"- {tool.name}: {tool.description} Arguments: {json.dumps(args)}")
    return "\n".join(lines)


class ReActAgent:
    """`ReActAgent(engine, tools, params).run("question")` -> AgentResult; `on_step(step)`
    is called for each step as it happens. `steps("question")` yields them instead."""

    def __init__(
        self,
        engine: Engine,
        tools: ToolRegistry,
        params: SamplingParams,
        system: str = "",
        max_steps: int = 5,
        on_step: Callable[[Step], None] | None = None,
    ):
        if max_steps < 1:
            raise TllmError("the agent needs at least one step")
        if not len(tools):
            raise TllmError("the agent has no tools")
        self.engine, self.tools, self.params = engine, tools, params
        self.system, self.max_steps = system, max_steps
        self.on_step = on_step or (lambda step: None)
        if engine.supports_grammar:  # built once: the tools do not change between steps
            self._grammars = (react_grammar(tools), react_grammar(tools, final_only=True))

    def system_prompt(self) -> str:
        instructions = INSTRUCTIONS.format(tools=describe_tools(self.tools))
        return f"{self.system}\n\n{instructions}" if self.system else instructions

    def run(self, question: str, history: Sequence[dict] = ()) -> AgentResult:
        """Answer `question`; `history` holds earlier user/assistant turns of a chat.
        `on_step` sees each step as it happens."""
        steps = self.steps(question, history)
        while True:
            try:
                self.on_step(next(steps))
            except StopIteration as finished:
                return finished.value

    def steps(
        self, question: str, history: Sequence[dict] = ()
    ) -> Generator[Step, None, AgentResult]:
        """The steps of the answer to `question`, each as it happens; returns the result."""
        example = EXAMPLE if "calculator" in self.tools.names() else []
        messages = [
            {"role": "system", "content": self.system_prompt()},
            *example,
            *history,
            {"role": "user", "content": question},
        ]
        prompt = self.engine.render(messages)
        scratchpad, steps, calls = "", [], 0
        distinct: set[tuple[str, str]] = set()  # (tool, its arguments) of each call made
        for number in range(1, self.max_steps + 1):
            # A call repeated word for word would get the same observation again: after one,
            # or on the last step, only a final answer may follow (the loop always ends).
            last = number == self.max_steps or len(distinct) < calls
            text = self._generate(prompt + scratchpad, last=last)
            thought, tool, raw_input, answer = parse_step(text)
            if thought:
                steps.append(Step("thought", thought))
                yield steps[-1]
            if answer is not None or tool is None:
                final = answer if answer is not None else text.strip()
                steps.append(Step("answer", final))
                yield steps[-1]
                return AgentResult(final, steps, finished=answer is not None)
            arguments, observation = self._act(tool, raw_input)
            calls += 1
            distinct.add(
                (tool, raw_input if arguments is None else json.dumps(arguments, sort_keys=True))
            )
            steps.append(Step("action", raw_input, tool=tool, arguments=arguments))
            yield steps[-1]
            steps.append(Step("observation", observation, tool=tool))
            yield steps[-1]
            scratchpad += f"{_step_text(thought, tool, raw_input)}\nObservation: {observation}\n"
        return AgentResult(f"(no final answer after {self.max_steps} steps)", steps, finished=False)

    def _generate(self, prompt: str, last: bool) -> str:
        if self.engine.supports_grammar:
            grammar = self._grammars[1 if last else 0]
            params = dataclasses.replace(self.params, grammar=grammar)
        else:
            params = dataclasses.replace(self.params, stop=[*self.params.stop, "\nObservation:"])
        return self.engine.complete(prompt, params).run().text

    def _act(self, name: str, raw_input: str) -> tuple[dict | None, str]:
        """(the parsed arguments, the observation): errors become the observation, so the
        model can see what went wrong and try again."""
        try:
            arguments = json.loads(raw_input or "{}")
        except ValueError:
            return None, f"Error: the Action Input is not valid JSON: {raw_input!r}"
        try:
            result = self.tools.get(name).call(arguments)
        except ToolError as exc:
            return arguments, f"Error: {exc}"
        result = " ".join(result.split()) if "\n" not in result.strip() else result.strip()
        if len(result) > MAX_OBSERVATION:
            result = result[:MAX_OBSERVATION] + " ..."
        return arguments, result


_STEP = re.compile(
    r"^\s*Thought:\s*(?P<thought>[^\n]*)\n?"
    r"(?:Action:\s*(?P<tool>[\w-]+)\s*\nAction Input:\s*(?P<input>.*?)\s*$"
    r"|Final Answer:\s*(?P<answer>.*?)\s*$)?",
    re.DOTALL,
)


def parse_step(text: str) -> tuple[str, str | None, str, str | None]:
    """(thought, tool name, raw action input, final answer) of one generated step."""
    match = _STEP.match(text)
    if match is None:  # no "Thought:" (only possible without a grammar): look for the parts
        tool = re.search(r"Action:\s*([\w-]+)", text)
        raw = re.search(r"Action Input:\s*(\{.*\})", text, re.DOTALL)
        answer = re.search(r"Final Answer:\s*(.*)", text, re.DOTALL)
        return (
            "",
            tool.group(1) if tool else None,
            raw.group(1) if raw else "",
            answer.group(1).strip() if answer else None,
        )
    return (
        match["thought"].strip(),
        match["tool"],
        match["input"] or "",
        match["answer"] if match["answer"] is not None else None,
    )


def _step_text(thought: str, tool: str, raw_input: str) -> str:
    """The step as the model should see it again (normalized, one line each)."""
    return f"Thought: {thought}\nAction: {tool}\nAction Input: {raw_input.strip()}"
