"""Options shared by several commands, and turning them into the objects the core uses."""

from __future__ import annotations

import click

from ..home import ENGINES, Home


def home_options(func):
    """Add `--home` and `--debug` to a command (they also work before the command name)."""
    func = click.option(
        "--debug", is_flag=True, expose_value=False, help="Show a traceback on errors."
    )(func)
    func = click.option(
        "--home",
        "home_dir",
        type=click.Path(file_okay=False),
        help="The assistant's home directory (default: $TLLM_HOME or ~/.together-llm).",
    )(func)
    return func


def group_home() -> str | None:
    """The home given before the command name (`tllm --home X cmd`), if any."""
    return (click.get_current_context().find_root().obj or {}).get("home")


def open_home(home_dir: str | None) -> Home:
    """The home named on the command, else on the group, else $TLLM_HOME or the default."""
    return Home.open(home_dir or group_home())


def sampling_options(func):
    """The sampling flags of ask and chat; unset flags fall back to assistant.yaml."""
    options = [
        click.option("--seed", type=int, help="Random seed for reproducible answers."),
        click.option("--stop", multiple=True, help="Stop before this text (repeatable)."),
        click.option("--repetition-penalty", type=float, help="Above 1 discourages repeats."),
        click.option("--top-k", type=int, help="Sample from the k most likely tokens (0 = all)."),
        click.option("--top-p", type=float, help="Nucleus sampling probability mass."),
        click.option("--temperature", type=float, help="0 = always the most likely token."),
        click.option("--max-tokens", type=int, help="Longest answer in tokens."),
    ]
    for option in options:
        func = option(func)
    return func


def sampling_flags(flags: dict) -> dict:
    """The sampling flags as SamplingParams fields: `--stop` values unescaped, into a list."""
    return {**flags, "stop": [unescape(s) for s in flags.get("stop") or ()]}


def unescape(text: str) -> str:
    """`--stop "\\n\\n"` means two newlines: shells pass the backslashes through."""
    return text.replace("\\n", "\n").replace("\\t", "\t").replace("\\r", "\r")


def engine_options(func):
    """Which model, adapter and engine to answer with."""
    func = click.option(
        "--engine", type=click.Choice(ENGINES), help="Override assistant.yaml's engine choice."
    )(func)
    func = click.option("--adapter", help="Answer with this adapter (transformers engine).")(func)
    func = click.option("--model", "-m", help="Base model name (default: assistant.yaml's model).")(
        func
    )
    return func
