"""`tllm models`: the base-model registry (list, add, info, convert)."""

from __future__ import annotations

import json

import click

from ..errors import TllmError
from ..models.gguf_to_hf import convert_gguf
from ..models.registry import add_model, get_model, list_models, model_info
from .common import home_options, open_home


@click.group()
def models():
    """Base models: the bundled default, GGUF files, HF directories and hub ids.

    \b
    Examples:
      tllm models list
      tllm models add tiny ./my-model-dir
      tllm models add qwen ./qwen2.5-0.5b-instruct-q8_0.gguf
      tllm models add peer http://10.0.0.7:8000/v1 --api-key-env PEER_KEY
      tllm models info default
      tllm models convert default      # GGUF -> HF directory for training
    """


@models.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
@home_options
def list_(as_json, home_dir):
    """List the registered models."""

    home = open_home(home_dir)
    entries = [e.to_dict() for e in list_models(home)]
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    active = home.load_config().model
    for e in entries:
        mark = "*" if e["name"] == active else " "
        converted = (
            "  (converted: " + e["hf_dir"] + ")"
            if e["hf_dir"] and e["kind"] in ("default", "gguf")
            else ""
        )
        click.echo(f"{mark} {e['name']:<20} {e['kind']:<8} {e['source']}{converted}")


@models.command()
@click.argument("name")
@click.argument("source")
@click.option("--api-key-env", help="Remote URL: the environment variable holding its API key.")
@click.option("--remote-model", help="Remote URL: the model id to ask for (default: its first).")
@home_options
def add(name, source, api_key_env, remote_model, home_dir):
    """Register SOURCE as NAME: a .gguf file, an HF model directory, a hub id, or the URL of
    an OpenAI-compatible endpoint (e.g. http://other-host:8000/v1)."""

    entry = add_model(
        open_home(home_dir), name, source, remote_model=remote_model, api_key_env=api_key_env
    )
    click.echo(f"added {entry.name} ({entry.kind}: {entry.source})")


@models.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@home_options
def info(name, as_json, home_dir):
    """Show what model NAME is: format, architecture, family, size, fingerprint."""

    details = model_info(open_home(home_dir), name)
    if as_json:
        click.echo(json.dumps(details, indent=2))
        return
    for key, value in details.items():
        click.echo(f"{key:<18} {value}")


@models.command()
@click.argument("name")
@home_options
def convert(name, home_dir):
    """Write the HF (transformers) twin of GGUF model NAME under the home's models/."""

    entry = get_model(open_home(home_dir), name)
    if entry.gguf_path is None:
        raise TllmError(
            f"model {name!r} is already a transformers model ({entry.kind}); nothing to convert"
        )
    out = convert_gguf(entry.gguf_path, entry.local_dir, report=lambda m: click.echo(m, err=True))
    click.echo(str(out))
