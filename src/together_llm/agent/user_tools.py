"""The user's own tools: the public functions of `tools.py` in the home.

The file is imported from that exact path, and only when an agent runs (it is the user's
own code, run with their rights, like a shell alias). Every public function defined in
the file becomes a tool; it needs type hints on its parameters and a docstring, because
the schema and description the model sees come from them. Functions imported into the
file (`from math import sqrt`) and names starting with `_` are left out.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

from ..errors import TllmError
from .tools import Tool, tool_from_function

MODULE = "tllm_home_tools"


def load_user_tools(path: Path) -> list[Tool]:
    """Tools from the functions in `path`; none when the file does not exist."""
    if not path.is_file():
        return []
    spec = importlib.util.spec_from_file_location(MODULE, path)
    if spec is None or spec.loader is None:  # Python finds no loader for a file not named .py
        raise TllmError(f"{path} could not be loaded: it is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop(MODULE, None)  # a fresh import each time: the file may have changed
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: any error it raises is theirs to fix
        raise TllmError(f"{path} could not be loaded: {type(exc).__name__}: {exc}") from None
    tools = []
    for name, value in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(value) or value.__module__ != MODULE:
            continue
        try:
            tools.append(tool_from_function(value))
        except TllmError as exc:
            raise TllmError(f"{path}: {exc}") from None
    return tools
