"""The federation's settings as click options, shared by `tllm together simulate` and
`tllm together serve`: one option per field of settings.Federation, made from the field's
help, choices and bounds (settings_kit.click_options)."""

from __future__ import annotations

from ...settings_kit import click_options
from ...together.settings import Federation

federation_options = click_options(Federation)


def federation(settings: dict, **more) -> Federation:
    """The checked settings.Federation of the options' values (`settings`: a command's
    keyword arguments, which hold these options and nothing else) and `more`."""
    return Federation.from_flags(settings, **more)
