"""`tllm config`: show and change assistant.yaml, with every key and value checked."""

from __future__ import annotations

import json

import click

from ..adapters.store import adapter_dir
from ..home import config_fields, set_value
from ..models.registry import get_model
from .common import home_options, open_home


@click.group()
def config():
    """Show or change the assistant's settings (assistant.yaml).

    \b
    Examples:
      tllm config show
      tllm config set system_prompt "You are a concise assistant."
      tllm config set generation.temperature 0.2
      tllm config set adapters my-adapter,other
    """


@config.command()
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
@home_options
def show(as_json, home_dir):
    """Print every setting with its value and what it means."""
    home = open_home(home_dir)
    settings = home.load_config()
    if as_json:
        click.echo(json.dumps(settings.to_dict(), indent=2))
        return
    click.echo(f"# {home.config_path}")
    for key, field, owner in config_fields(settings):
        value = getattr(owner, field.name)
        click.echo(f"{key} = {json.dumps(value)}    # {field.metadata.get('help', '')}")


@config.command(name="set", context_settings={"ignore_unknown_options": True})  # VALUE may be -1
@click.argument("key")
@click.argument("value")
@home_options
def set_(key, value, home_dir):
    """Set KEY (dotted, e.g. generation.temperature) to VALUE."""
    home = open_home(home_dir)
    settings = home.load_config()
    set_value(settings, key, value)
    _check_names(home, settings, key)
    home.save_config(settings)
    for name, field, owner in config_fields(settings):
        if name == key:
            click.echo(f"{key} = {json.dumps(getattr(owner, field.name))}")


def _check_names(home, settings, key: str) -> None:
    """A model or adapter named in assistant.yaml must exist in the home."""
    if key == "model":
        get_model(home, settings.model)
    elif key == "adapters":
        for name in settings.adapters:
            adapter_dir(home, name)
