"""`tllm`: the entry point. Sub-commands are imported only when run, so `tllm --help` and
`tllm ask` stay fast and never import torch unless the chosen engine needs it."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from .. import __version__
from ..errors import TllmError

# name -> "module:attribute"; order is the order `tllm --help` lists them.
COMMANDS = {
    "ask": ("together_llm.cli.ask:ask", "Answer one prompt, streaming the reply."),
    "chat": ("together_llm.cli.chat:chat", "Talk with the assistant in the terminal."),
    "serve": ("together_llm.cli.serve:serve", "Serve the web chat (/) and the OpenAI API (/v1)."),
    "config": ("together_llm.cli.config:config", "Show or change assistant.yaml."),
    "models": ("together_llm.cli.models:models", "List, add, inspect and convert base models."),
    "data": ("together_llm.cli.data:data", "Import, check, clean, split and grow datasets."),
    "train": ("together_llm.cli.train:train", "Train an adapter or a model on a dataset."),
    "remember": (
        "together_llm.cli.learn:remember",
        "Tell the assistant something to remember (tllm improve teaches it).",
    ),
    "memories": ("together_llm.cli.learn:memories", "List, show and forget memories."),
    "improve": (
        "together_llm.cli.learn:improve_command",
        "Learn what is new without forgetting; adopt only if better (versions, rollback).",
    ),
    "adapters": (
        "together_llm.cli.adapters:adapters",
        "List, inspect, choose, share and merge adapters.",
    ),
    "eval": (
        "together_llm.cli.eval:eval_command",
        "Measure an adapter or model on a dataset beside its base (report with charts).",
    ),
    "arena": (
        "together_llm.cli.arena:arena",
        "Rate assistants against each other (Bradley-Terry leaderboard).",
    ),
    "export": (
        "together_llm.cli.export:export",
        "Export a model or adapter: Hugging Face, GGUF, Ollama.",
    ),
    "optimize": (
        "together_llm.cli.optimize:optimize",
        "Measure the backends that can serve the assistant; serve it with the fastest within a quality bound.",
    ),
    "knowledge": (
        "together_llm.cli.knowledge:knowledge",
        "Add, list, search and remove the documents the assistant can search.",
    ),
    "together": (
        "together_llm.cli.together:together",
        "Co-evolve with other assistants: federated training (Flower), evolve.",
    ),
}


class LazyGroup(click.Group):
    """A group that imports a sub-command's module only when that command is used.
    `lazy_commands` maps name -> ("module:attribute", one-line help)."""

    lazy_commands: dict = COMMANDS

    def list_commands(self, ctx):
        return list(self.lazy_commands)

    def get_command(self, ctx, name):
        if name not in self.lazy_commands:
            return None
        module, attr = self.lazy_commands[name][0].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, help) for name, (_, help) in self.lazy_commands.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def lazy_group(commands: dict) -> type[LazyGroup]:
    """A LazyGroup class for a command group with its own sub-commands."""
    return type("LazyGroup", (LazyGroup,), {"lazy_commands": commands})


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tllm")
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar="TLLM_HOME",
    help="The assistant's home directory (default: $TLLM_HOME or ~/.together-llm).",
)
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
@click.pass_context
def cli(ctx, home, debug):
    """Together-LLM: your own language assistant on open models, on your own computer.

    \b
    Examples:
      tllm ask "What is the capital of France?"
      tllm chat
      tllm models list
      tllm config set generation.temperature 0.2
    """
    ctx.ensure_object(dict)
    ctx.obj["home"] = home


def _debug_requested(argv) -> bool:
    return "--debug" in argv or os.environ.get("TLLM_DEBUG", "") not in ("", "0")


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)

    # On import, bitsandbytes warns that it cannot fetch an optional CPU kernel from the hub
    # (nothing is fetched at run time here); its built-in kernel works, so say nothing.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    try:
        cli.main(args=argv, prog_name="tllm", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("\ninterrupted", err=True)
        sys.exit(130)
    except TllmError as exc:
        if _debug_requested(argv):
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug: one line unless --debug
        if _debug_requested(argv):
            raise
        click.echo(
            f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
