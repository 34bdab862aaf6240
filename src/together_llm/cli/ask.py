"""`tllm ask`: one prompt in, one streamed answer out."""

from __future__ import annotations

import json
import os
import sys

import click

from ..assistant.answer import AnswerOptions
from ..errors import TllmError
from .answer_output import agent_options, as_record, open_assistant, show_answer
from .common import engine_options, home_options, sampling_flags, sampling_options
from .knowledge import knowledge_option


@click.command()
@click.argument("prompt")
@click.option("--system", "-s", help="System prompt (default: assistant.yaml's system_prompt).")
@click.option("--json", "as_json", is_flag=True, help="Print {text, usage, finish_reason} as JSON.")
@sampling_options
@engine_options
@knowledge_option
@agent_options
@home_options
def ask(
    prompt,
    system,
    as_json,
    model,
    adapter,
    engine,
    use_knowledge,
    agent,
    max_steps,
    home_dir,
    **sampling,
):
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
    options = AnswerOptions(
        system=system,
        knowledge=use_knowledge,
        agent=agent,
        max_steps=max_steps,
        sampling=sampling_flags(sampling),
    )
    assistant, llm = open_assistant(home_dir, options, model, adapter, engine)
    events = assistant.answer(llm, [{"role": "user", "content": prompt}], options)
    if as_json:
        record = {**as_record(events)[0], "engine": llm.name}  # which engine answered
        click.echo(json.dumps(record, ensure_ascii=False))
        return
    try:
        show_answer(events, sys.stdout)
    except BrokenPipeError:  # the reader went away (`tllm ask ... | head -1`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise click.exceptions.Exit(0) from None
