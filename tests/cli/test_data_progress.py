"""The data commands' progress bar: drawn on a terminal for big work, silent otherwise."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import sys, time
from together_llm.cli.data.progress import progress
with progress("templating src", 10, at_least=5) as update:
    update(3)
    time.sleep(0.3)
    update(10, "all rows read")
    time.sleep(0.3)
with progress("too small to show", 4, at_least=5) as update:
    update(4)
print("end", file=sys.stderr)
"""


def _stderr_of(script: str, terminal: bool) -> str:
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"}
    if not terminal:
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.stderr
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        stderr=follower,
        stdout=subprocess.DEVNULL,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_bar_shows_counts_and_note_on_a_terminal_for_big_work_only():
    shown = _stderr_of(SCRIPT, terminal=True)
    assert "templating src" in shown and "3/10" in shown and "all rows read" in shown
    assert "too small to show" not in shown and "end" in shown


def test_nothing_is_drawn_when_stderr_is_not_a_terminal():
    assert _stderr_of(SCRIPT, terminal=False) == "end\n"
