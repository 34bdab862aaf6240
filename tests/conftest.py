"""Shared fixtures: a fresh home per test, the `tllm` command run as a user runs it, and
the bundled default model converted once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from together_llm.home import Home

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path) -> Home:
    return Home.open(tmp_path / "home")


def run_tllm(
    *args, home: Home | Path | None = None, input: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run `tllm ARGS` in a subprocess, as a user would, and return what it printed."""
    env = dict(os.environ)
    env.pop("TLLM_DEBUG", None)
    if home is not None:
        env["TLLM_HOME"] = str(getattr(home, "path", home))
    return subprocess.run(
        [sys.executable, "-m", "together_llm.cli.main", *map(str, args)],
        input=input,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture(scope="session")
def converted_home(tmp_path_factory) -> Home:
    """A home whose `default` model has been converted to a transformers directory."""
    home = Home.open(tmp_path_factory.mktemp("converted") / "home")
    result = run_tllm("models", "convert", "default", home=home)
    assert result.returncode == 0, result.stderr
    return home
