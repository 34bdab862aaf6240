"""`tllm ask`: one prompt in, one streamed answer out."""

from __future__ import annotations

import json
import os
import sys

import click

from ..errors import TllmError
from .common import engine_options, home_options, open_home, sampling_options, sampling_params


@click.command()
@click.argument("prompt")
@click.option("--system", "-s", help="System prompt (default: assistant.yaml's system_prompt).")
@click.option("--json", "as_json", is_flag=True, help="Print {text, usage, finish_reason} as JSON.")
@sampling_options
@engine_options
@home_options
def ask(prompt, system, as_json, model, adapter, engine, home_dir, **sampling):
    """Answer PROMPT with the assistant, streaming the reply. PROMPT '-' reads standard input.

    \b
    Examples:
      tllm ask "What is the capital of France?"
      tllm ask --temperature 0 --max-tokens 40 "Name three primes."
      echo "Summarize: ..." | tllm ask -
      tllm ask --json --seed 1 "Hello"
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

    from ..engine.select import open_engine

    llm = open_engine(home, config, model=model, adapter=adapter, engine=engine)
    generation = llm.chat(messages, params)
    if as_json:
        click.echo(json.dumps(generation.run().to_dict(), ensure_ascii=False))
        return
    out = sys.stdout
    try:
        for piece in generation:
            out.write(piece)
            out.flush()
        out.write("\n")
        out.flush()
    except BrokenPipeError:  # the reader went away (`tllm ask ... | head -1`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        raise click.exceptions.Exit(0) from None
