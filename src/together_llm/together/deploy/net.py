"""The network side of `serve` and `join`: addresses, the loopback rule, reaching a
SuperLink over TLS before Flower tries (so a wrong CA is a clear refusal, not endless
retries), and the environment Flower's own processes need."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

from ...errors import TllmError


def parse_address(address: str) -> tuple[str, int]:
    """("host", port) of "HOST:PORT" or "[IPv6]:PORT"."""
    host, sep, port = address.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TllmError(
            f"{address!r} is not an address: write HOST:PORT, e.g. 0.0.0.0:9092 "
            "or coordinator.example.org:9092"
        )
    return host, int(port)


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_host(host: str) -> str:
    """The address this machine reaches a server bound to `host` at."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def reach(host: str, port: int, ca: Path | None, wait: float = 0.0) -> None:
    """Open a connection to the SuperLink at host:port, with TLS verified against `ca`
    (None: plain). Nothing listening is retried for `wait` seconds; a certificate that the
    CA did not sign is refused at once."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with socket.create_connection((host, port), timeout=10) as sock:
                if ca is not None:
                    context = ssl.create_default_context(cafile=str(ca))
                    with context.wrap_socket(sock, server_hostname=host):
                        pass
                elif not _speaks_http(sock):
                    raise TllmError(
                        f"{join_address(host, port)} does not answer plain HTTP: it "
                        "uses TLS; give --root-cert ca.pem instead of --insecure"
                    )
            return
        except ssl.SSLCertVerificationError as exc:
            raise TllmError(
                f"refused: the SuperLink at {join_address(host, port)} presents a "
                f"certificate that {ca} does not vouch for ({exc.verify_message}); "
                "ask the coordinator for the federation's ca.pem"
            ) from None
        except ssl.SSLError as exc:
            raise TllmError(
                f"no TLS session with {join_address(host, port)} ({exc.reason}): "
                "is it a SuperLink started with --certs?"
            ) from None
        except FileNotFoundError:
            raise TllmError(f"no CA certificate file {ca}") from None
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise TllmError(
                    f"cannot reach {join_address(host, port)} ({exc.strerror or exc}); "
                    "is `tllm together serve` running there?"
                ) from None
            time.sleep(2)


def _speaks_http(sock) -> bool:
    """Whether the server on `sock` answers a plain HTTP request (a TLS one does not)."""
    try:
        sock.sendall(b"GET /health HTTP/1.0\r\nHost: superlink\r\n\r\n")
        return sock.recv(5) == b"HTTP/"
    except OSError:
        return False


def flower_env(flwr_home: Path, extra: dict | None = None) -> dict:
    """The environment for Flower's processes: this Python's scripts first on PATH (the
    SuperLink and SuperNode start `flower-superexec`, which starts `flwr-serverapp` or
    `flwr-clientapp`, by name), and Flower's own state under `flwr_home`."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env["FLWR_HOME"] = str(flwr_home)
    env.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # no usage pings from a private federation
    env.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")  # nor version look-ups
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


def start_flower(command: list[str], log_path: Path, flwr_home: Path):
    """A Flower process (SuperLink or SuperNode) in its own process group, its output
    appended to `log_path`, its FLWR_HOME `flwr_home`."""

    log = open(log_path, "ab")
    try:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=flower_env(flwr_home),
            start_new_session=True,
        )
    finally:
        log.close()


def stop(process, grace: float = 10.0) -> None:
    """End `process` and everything it started (it leads its own process group)."""

    if process is None or process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def sigterm_as_interrupt() -> None:
    """Let SIGTERM end `serve` and `join` like Ctrl-C, so their cleanup stops the Flower
    processes they started (which lead process groups of their own)."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)
