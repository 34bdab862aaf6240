"""`tllm together join HOST:PORT --data NAME`: this home becomes a peer of a federation.

It starts Flower's SuperNode, connected to the coordinator's SuperLink, with this home and
dataset in its node config; the package's ClientApp then trains the shared adapter on this
home's rows in each round and sends back only the adapter's tensors. The rows never leave.
On the last round the ClientApp saves the global adapter into this home (adapters/<name>,
provenance in its card).

Before Flower starts, the SuperLink's certificate is checked against the given CA, so a
wrong or missing CA is refused at once with the reason (Flower itself would retry forever).
Node authentication: the first join makes this home's key pair (together/node/node.key and
node.pub); the coordinator allows the `.pub` file. Output of the SuperNode goes to
together/node/supernode.log.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import subprocess
import sys
import time
from pathlib import Path

import tomli_w

from ...adapters.card import CARD_FILE, AdapterCard
from ...data.store import open_dataset
from ...errors import TllmError
from ...home import Home
from ..certs import node_key_pair
from .net import (
    free_port,
    is_loopback,
    join_address,
    parse_address,
    reach,
    sigterm_as_interrupt,
    start_flower,
    stop,
)

_SUPERNODE = (
    "from flwr.supernode.cli import flower_supernode; import sys; sys.exit(flower_supernode())"
)
_EVENTS = (
    ("SuperNode ID:", "joined"),
    ("Receiving: train message", "train"),
    ("Receiving: evaluate message", "evaluate"),
    ("Sent successfully", "sent"),
)
REPLY_GRACE = 120.0  # --once: seconds to let the last reply go out after the adapter arrived
# --once: seconds to stay after the last reply went out. Flower 1.42's SuperLink answers the
# ServerApp "Node Unavailable" for a reply whose node went offline before the ServerApp
# collected it (it polls every 3 s), so leaving at once would lose this peer's last metrics.
LINGER = 12.0


def node_folder(home: Home) -> Path:
    return home.together_dir / "node"


def join(
    home: Home,
    address: str,
    data: str,
    ca: Path | None = None,
    insecure: bool = False,
    key: Path | None = None,
    once: bool = False,
    wait: float = 300.0,
    report=print,
) -> list[dict]:
    """Take part in the federation at `address` until interrupted (or, with `once`, until
    an adapter arrives); the adapters received, as {"adapter", "run_id"}."""

    host, port = parse_address(address)
    if insecure and ca is not None:
        raise TllmError("--insecure and a CA certificate contradict each other; choose one")
    if insecure and not is_loopback(host):
        raise TllmError(
            f"refused: joining {host} without TLS would send adapters in clear "
            "text; give --root-cert ca.pem (the coordinator's CA)"
        )
    if not insecure and ca is None:
        raise TllmError(
            "give --root-cert ca.pem (or --certs DIR): the coordinator's CA "
            "certificate, from `tllm together certs`"
        )
    if ca is not None and not Path(ca).is_file():
        raise TllmError(f"no CA certificate file {ca}")
    dataset = open_dataset(home, data)
    if not dataset.has_splits:
        raise TllmError(
            f"dataset {data!r} has no held-out split: run `tllm data split {data}` "
            "first (each round measures the shared adapter on it)"
        )
    folder = node_folder(home)
    folder.mkdir(parents=True, exist_ok=True)
    if not insecure:
        key = Path(key).expanduser() if key else node_key_pair(folder / "node.key")[0]
        if not key.is_file():
            raise TllmError(f"no node key file {key}")
        report({"key": str(key.with_suffix(".pub"))})
    sigterm_as_interrupt()
    with _only_join(folder):
        reach(host, port, ca, wait)
        process = _start_supernode(
            home, folder, join_address(host, port), data, ca, key if not insecure else None
        )
        try:
            return _follow(home, folder, process, once, report)
        finally:
            stop(process)


@contextlib.contextmanager
def _only_join(folder: Path):
    """One `join` per home at a time (they would share the node's key and log)."""

    with open(folder / "join.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise TllmError(
                f"this home already takes part in a federation (another `tllm "
                f"together join` holds {folder / 'join.lock'})"
            ) from None
        yield


def _start_supernode(
    home: Home, folder: Path, address: str, data: str, ca, key
) -> subprocess.Popen:
    config = folder / "node-config.toml"  # a file: any home path, spaces and quotes included
    config.write_text(tomli_w.dumps({"home": str(home.path), "data": data}), encoding="utf-8")
    command = [
        sys.executable,
        "-c",
        _SUPERNODE,
        "--superlink",
        address,
        "--node-config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
    ]
    command += ["--insecure"] if ca is None else ["--root-certificates", str(ca)]
    if key is not None:
        command += ["--auth-supernode-private-key", str(key)]
    return start_flower(command, folder / "supernode.log", folder / "flwr")


def _follow(home: Home, folder: Path, process, once: bool, report) -> list[dict]:
    """Report the SuperNode's progress and each adapter that arrives."""
    log = folder / "supernode.log"
    offset = log.stat().st_size if log.is_file() else 0
    started = time.time()
    received: list[dict] = []
    seen: set[tuple] = set()
    leave_at = None  # --once: the adapter arrived; its evaluate reply may still be going out
    replied_at = None  # when the last message received was answered (None: not yet)
    while True:
        text = _read_from(log, offset)
        offset += len(text.encode("utf-8"))
        for line in text.splitlines():
            for marker, event in _EVENTS:
                if marker in line:
                    replied_at = time.monotonic() if event == "sent" else None
                    if event != "sent":
                        found = re.search(r"SuperNode ID:\s*(\d+)", line)
                        report(
                            {"event": event, **({"node_id": int(found.group(1))} if found else {})}
                        )
        for adapter in _new_adapters(home, started, seen):
            received.append(adapter)
            report(adapter)
            if once and leave_at is None:  # "Receiving" was logged (replied_at None) before
                leave_at = time.monotonic() + REPLY_GRACE  # the ClientApp saved the adapter
        if leave_at is not None and (
            time.monotonic() > leave_at
            or (replied_at is not None and time.monotonic() - replied_at > LINGER)
        ):
            return received
        if process.poll() is not None:
            raise TllmError(f"the SuperNode stopped (exit {process.returncode}): {_reason(log)}")
        time.sleep(1)


def _read_from(path: Path, offset: int) -> str:
    if not path.is_file():
        return ""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    cut = data.rfind(b"\n") + 1  # whole lines only; the rest is read next time
    return data[:cut].decode("utf-8", errors="replace")


def _new_adapters(home: Home, since: float, seen: set) -> list[dict]:
    """Federated adapters saved into this home after `since`, not reported yet."""
    found = []
    for card_path in (
        sorted(home.adapters_dir.glob(f"*/{CARD_FILE}")) if home.adapters_dir.is_dir() else []
    ):
        try:
            if card_path.stat().st_mtime < since:
                continue
            card = AdapterCard.read(card_path)
        except (OSError, ValueError):
            continue  # being written: next time
        federated = card.federated
        run_id = federated.run_id if federated else None
        key = (card_path.parent.name, run_id)
        if card.provenance == "federated" and key not in seen:
            seen.add(key)
            found.append(
                {
                    "adapter": card_path.parent.name,
                    "run_id": run_id,
                    "path": str(card_path.parent),
                    "rounds": federated.rounds if federated else None,
                }
            )
    return found


def _reason(log: Path) -> str:
    """Flower's own words for why the SuperNode gave up (the lines after its error mark)."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.is_file() else []
    for i in range(len(lines) - 1, -1, -1):
        if "ERROR" in lines[i] or "Failed to initialize" in lines[i]:
            return " ".join(
                re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in lines[i : i + 4]
            )
    return f"see {log}"
