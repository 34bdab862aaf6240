"""`tllm ask`: one prompt in, one streamed answer out."""

from __future__ import annotations

import json
import os
import sys

import click

from ..agent.session import agent_options
from ..errors import TllmError
from .common import engine_options, home_options, open_home, sampling_options, sampling_params
from .knowledge import cited, echo_sources, knowledge_option, retrieve_into


@click.command()
@click.argument("prompt")
@click.option("--system", "-s", help="System prompt (default: assistant.yaml's system_prompt).")
@click.option("--json", "as_json", is_flag=True, help="Print {text, usage, finish_reason} as JSON.")
@sampling_options
@engine_options
@knowledge_option
@agent_options
@home_options
def ask(prompt, system, as_json, model, adapter, engine, use_knowledge, agent, max_steps, home_dir,
        **sampling):
    """Answer PROMPT with the assistant, streaming the reply. PROMPT '-' reads standard input.

    \b
    Examples:
      tllm ask "What is the capital of France?"
      tllm ask --temperature 0 --max-tokens 40 "Name three primes."
      echo "Summarize: ..." | tllm ask -
      tllm ask --json --seed 1 "Hello"
      tllm ask --knowledge "When is the lantern festival?"   # answers from your documents
      tllm ask --agent "What is 12345 * 678?"               # a ReAct agent with tools
    """
    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise TllmError("the prompt is empty")
    home = open_home(home_dir)
    config = home.load_config()
    params = sampling_params(config, **sampling)
    system = config.system_prompt if system is None else system
    messages = ([{"role": "system", "content": system}] if system else []) + \
        [{"role": "user", "content": prompt}]
    from ..knowledge.retrieve import open_retriever

    # the agent searches the knowledge itself, with its knowledge_search tool
    retriever = None if agent else open_retriever(home, config, use_knowledge)
    messages, sources = retrieve_into(retriever, config, messages, prompt)

    from ..engine.select import open_engine

    llm = open_engine(home, config, model=model, adapter=adapter, engine=engine)
    if agent:
        from ..agent.session import ask_with_agent

        return ask_with_agent(home, config, llm, prompt, system, sampling, as_json, max_steps)
    generation = llm.chat(messages, params)
    if as_json:
        completion = generation.run().to_dict()
        if retriever is not None:  # the cited sources, numbered as in the prompt
            completion["sources"] = [s.to_dict() for s in cited(completion["text"], sources, prompt)]
        click.echo(json.dumps(completion, ensure_ascii=False))
        return
    out = sys.stdout
    try:
        for piece in generation:
            out.write(piece)
            out.flush()
        out.write("\n")
        out.flush()
        echo_sources(cited(generation.completion.text, sources, prompt))
    except BrokenPipeError:  # the reader went away (`tllm ask ... | head -1`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        raise click.exceptions.Exit(0) from None
