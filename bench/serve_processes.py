"""The servers bench/serve.py measures, as processes: a free port, a server started in its
own process group and killed with it, and the peer's interpreter with llama-cpp-python's
own server installed."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ask_cold import PEER_VENV, ensure_peer  # bench/ is sys.path[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(cmd: list[str], env: dict, port: int, warm_up=lambda port: None, started=None):
    """Start a server in its own process group, wait until it answers, `warm_up(port)`
    (a first request loads the model), and kill the group after. `started`: a list the
    server's process is appended to (to read its memory)."""
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    if started is not None:
        started.append(proc)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(
                    f"{cmd[0]} exited: {log.read()[-2000:].decode(errors='replace')}"
                )
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            with contextlib.suppress(OSError), contextlib.closing(conn):
                conn.request("GET", "/v1/models")
                if conn.getresponse().status == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{cmd[0]} did not answer on :{port} within 120 s")
            time.sleep(0.3)
        warm_up(port)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(15)
        log.close()


def ensure_server_peer() -> Path:
    python = PEER_VENV / "bin" / "python"
    ensure_peer()
    if (
        subprocess.run(
            [str(python), "-c", "import llama_cpp.server.app"], capture_output=True
        ).returncode
        != 0
    ):
        print("installing llama-cpp-python[server] into bench/.venv-llm ...", file=sys.stderr)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "llama-cpp-python[server]",
            ],
            check=True,
        )
    return python
