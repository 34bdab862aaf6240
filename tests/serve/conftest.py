"""A live `tllm serve` in a subprocess, as users run it, for the API tests."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from together_llm.home import Home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_server(home: Home, *flags: str, log_path=None, started: list | None = None):
    """Start `tllm serve` on a free loopback port and yield its base URL (its process is
    appended to `started`, when given)."""
    port = free_port()
    env = {**os.environ, "TLLM_HOME": str(home.path)}
    env.pop("TLLM_API_KEY", None)
    log = open(log_path or os.devnull, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "together_llm.cli.main", "serve", "--port", str(port), *flags],
        env=env,
        stdout=log,
        stderr=log,
    )
    if started is not None:
        started.append(process)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"tllm serve exited with {process.returncode}")
            try:
                status, _ = request(f"http://127.0.0.1:{port}", "GET", "/health")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("tllm serve did not come up in 60 s")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def request(
    base: str,
    method: str,
    path: str,
    body: bytes | dict | None = None,
    headers: dict | None = None,
    timeout: float = 120,
):
    """A raw HTTP request (for what the OpenAI client refuses to send): (status, json body)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    payload = json.dumps(body).encode() if isinstance(body, dict) else body
    connection.request(
        method, path, body=payload, headers={"Content-Type": "application/json", **(headers or {})}
    )
    response = connection.getresponse()
    data = response.read()
    connection.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data.decode(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = Home.open(tmp_path_factory.mktemp("serve") / "home")
    with live_server(home, log_path=home.path / "serve.log") as base:
        yield base, home
