"""The assistant's answer to a conversation: the one place a conversation is assembled.

`Assistant.answer(engine, conversation, options)` yields what the front ends show, as it
happens: `TextPiece`s of the answer, the agent's `AgentStep`s, a `ToolCall` when the answer
calls one of the client's tools (its markup never reaches the text), the `CitedSources`
when knowledge is on, and last `Finished` with the whole completion. On the way it puts the
assistant's system prompt first (unless the conversation brings its own), grounds the last
question in the home's documents (grounding.py), picks the sampling (what the client set,
else assistant.yaml's defaults; a configured seed moves on with each new attempt, so a
regenerated or an n-th answer can differ), and, for a long chat, leaves the oldest exchanges
out when the context fills. With `agent`, a ReAct agent answers with its tools instead (it
searches the documents itself, with its knowledge_search tool).

The terminal, the web chat and the arena take their answers here whole; the OpenAI routes,
which also serve n choices, token ids, logprobs and tool calls, take the assembled prompt
(`prepare`) and the sampling (`sampling`) from here and generate themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..agent.presets import DEFAULT_STEPS, make_agent
from ..agent.react import AgentResult, Step
from ..engine.protocol import Completion, Engine, Generation, Usage
from ..errors import ContextError
from ..home import AssistantConfig, Home
from ..knowledge.prompt import Source
from ..sampling import SamplingParams
from .grounding import Grounding, Knowledge, knowledge_on
from .tools import CallScanner, ToolCall, Tools, parse_calls, render_tools

SEED_LIMIT = 2**32 - 1


@dataclass(frozen=True)
class AnswerOptions:
    """How to answer, as a front end asks; None means "as assistant.yaml says"."""

    system: str | None = None  # the system prompt ("" for none)
    knowledge: bool | None = None  # answer from the home's documents, citing them
    agent: bool = False  # a ReAct agent with tools answers
    max_steps: int = DEFAULT_STEPS  # the agent's most tool steps
    sampling: dict = field(default_factory=dict)  # SamplingParams fields the client set
    attempt: int = 0  # the n-th answer to the same question: a configured seed moves on by n
    forget_oldest: bool = False  # leave out the oldest exchanges when the context fills
    tools: Tools | None = None  # the client's tools and tool_choice; None: no tool messages


@dataclass
class TextPiece:
    text: str


@dataclass
class AgentStep:
    step: Step


@dataclass
class CitedSources:
    sources: list[Source]


@dataclass
class Finished:
    completion: Completion
    conversation: list[dict]  # the turns the answer saw (without the system prompt)
    agent: AgentResult | None = None


Event = TextPiece | AgentStep | CitedSources | ToolCall | Finished


class Assistant:
    """The assistant of a home: its assistant.yaml, its documents, its agent.
    `knowledge` is the front end's own switch (`tllm serve --knowledge`), between a
    request's and assistant.yaml's."""

    def __init__(self, home: Home, config: AssistantConfig, knowledge: bool | None = None):
        self.home, self.config, self.knowledge = home, config, knowledge
        self.grounding = Grounding(home, config)

    def knowledge_on(self, options: AnswerOptions) -> bool:
        return not options.agent and knowledge_on(self.config, options.knowledge, self.knowledge)

    def system_prompt(self, options: AnswerOptions) -> str:
        return self.config.system_prompt if options.system is None else options.system

    def with_system(self, messages: list[dict], options: AnswerOptions) -> list[dict]:
        """The conversation with the system prompt first, unless it starts with its own."""
        if messages and messages[0]["role"] == "system":
            return list(messages)
        system = self.system_prompt(options)
        return ([{"role": "system", "content": system}] if system.strip() else []) + messages

    def sampling(self, options: AnswerOptions, index: int = 0) -> SamplingParams:
        """What the client set, else assistant.yaml's defaults. The seed (the client's, else
        the configured one) moves on by `attempt + index`. An agent samples greedily unless
        told a temperature: each step is a decision, and small models decide best greedily."""
        given = dict(options.sampling)
        if options.agent and given.get("temperature") is None:
            given["temperature"] = 0.0
        seed = given.get("seed")
        seed = self.config.generation.seed if seed is None else seed
        if seed is not None:
            given["seed"] = (seed + options.attempt + index) % SEED_LIMIT
        return SamplingParams.with_defaults(self.config.generation, **given)

    def prepare(
        self, conversation: list[dict], options: AnswerOptions
    ) -> tuple[list[dict], Knowledge | None]:
        """The messages the model reads (system prompt, then the conversation with the last
        question grounded when knowledge is on, tool calls and results put in words and the
        offered tools shown) and what was retrieved (None: off). A ToolError (a TllmError
        naming `tools` or `tool_choice`) for tools that cannot be offered."""
        messages = self.with_system(conversation, options)
        knowledge = None
        if self.knowledge_on(options):
            messages, knowledge = self.grounding.ground(messages)
        if options.tools is not None:
            messages = render_tools(messages, options.tools)
        return messages, knowledge

    def answer(
        self, engine: Engine, conversation: list[dict], options: AnswerOptions
    ) -> Iterator[Event]:
        """The answer to the last user turn of `conversation`, as it happens."""
        if options.agent:
            yield from self._agent(engine, conversation, options)
            return
        messages, knowledge = self.prepare(conversation, options)
        generation, kept = self._start(engine, messages, options)
        tools = options.tools if options.tools is not None and options.tools.active else None
        if tools is None:
            for piece in generation:
                yield TextPiece(piece)
        else:
            yield from _text_around_calls(generation, tools)
        completion = generation.completion
        assert completion is not None  # set when the generation ends
        if tools is not None:
            yield from parse_calls(completion.text, tools)[1]
        if knowledge is not None:
            yield CitedSources(knowledge.cited(completion.text))
        turns = conversation[len(conversation) - kept :] if kept else []
        yield Finished(completion, [m for m in turns if m["role"] != "system"])

    def _start(
        self, engine: Engine, messages: list[dict], options: AnswerOptions
    ) -> tuple[Generation, int]:
        """The generation, and how many of the last messages it kept: with `forget_oldest`,
        the oldest exchanges are left out (of a copy) until the question leaves room for a
        useful answer, the asked length up to a quarter of the context."""
        params = self.sampling(options)
        grammar = options.tools.grammar(engine) if options.tools is not None else None
        if grammar is not None:  # the llama.cpp engine writes only well-formed calls
            params = dataclasses.replace(params, grammar=grammar)
        head = messages[:1] if messages and messages[0]["role"] == "system" else []
        turns = messages[len(head) :]
        if not options.forget_oldest or not engine.counts_tokens:
            return engine.chat(messages, params), len(turns)
        room = min(params.max_tokens, max(1, engine.context_length // 4))
        while True:
            ids = engine.tokenize(engine.render(head + turns))
            if len(ids) + room <= engine.context_length:
                return engine.generate(ids, params), len(turns)
            if len(turns) <= 1:
                raise ContextError(
                    f"this message needs {len(ids)} tokens of the {engine.context_length}-token "
                    f"context, leaving less than {room} for the answer; shorten it or raise "
                    "`tllm config set context_length N`"
                )
            turns = turns[2:]  # the oldest exchange: a question and its answer

    def _agent(
        self, engine: Engine, conversation: list[dict], options: AnswerOptions
    ) -> Iterator[Event]:
        """The agent's steps as it takes them, then its final answer. It sees the earlier
        questions and final answers (not their tool steps, which would crowd the context);
        when the context fills, the oldest exchanges are left out and it starts again."""
        turns = [m for m in conversation if m["role"] != "system"]
        question, earlier = turns[-1], turns[:-1]
        agent = make_agent(
            self.home,
            engine,
            self.sampling(options),
            self.system_prompt(options),
            options.max_steps,
        )
        while True:
            steps = agent.steps(question["content"], earlier)
            try:
                while True:
                    yield AgentStep(next(steps))
            except StopIteration as finished:
                result: AgentResult = finished.value
                break
            except ContextError:
                if not earlier:
                    raise
                earlier = earlier[2:]
        yield TextPiece(result.answer)
        completion = Completion(result.answer, Usage(0, 0), "stop" if result.finished else "length")
        yield Finished(completion, [*earlier, question], agent=result)


def _text_around_calls(generation: Generation, tools: Tools) -> Iterator[TextPiece]:
    """The answer's text pieces without a tool call's markup; an answer that began as a call
    but is none after all (cut off, arguments that do not parse) comes whole at the end."""
    scanner = CallScanner(tools.names())
    for piece in generation:
        for kind, text in scanner.feed(piece):
            if kind == "text":
                yield TextPiece(text)
    for _, text in scanner.finish():
        yield TextPiece(text)
    completion = generation.completion
    if scanner.mode == "call" and completion is not None:
        if not parse_calls(completion.text, tools)[1]:
            yield TextPiece(completion.text)


def answer_text(
    assistant: Assistant, engine: Engine, conversation: list[dict], options: AnswerOptions
) -> Finished:
    """The whole answer at once (the arena, scripts)."""
    finished = None
    for event in assistant.answer(engine, conversation, options):
        if isinstance(event, Finished):
            finished = event
    assert finished is not None
    return finished
