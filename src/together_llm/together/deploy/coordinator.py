"""`tllm together serve`: the coordinator of a federation across machines.

It starts Flower's SuperLink on the given address (link.py: Flower's own, with the
Control and Runtime APIs kept to this machine), allows the peers' node keys, submits the
run (the package's ServerApp with this federation's settings, control.py) and
follows it through the run's metrics.jsonl, which the ServerApp writes round by round as in
a simulation (same folder, same records, so `tllm together status` shows both kinds).
Peers connect with `tllm together join` (join.py).

Security (DESIGN §8): beyond loopback, TLS is required (`--certs`, from `tllm together
certs`), and so is node authentication (each peer's public key, `--allow` or the certs
folder's nodes/*.pub) unless `--open` says any SuperNode may join.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

from ...data.store import open_dataset
from ...errors import TllmError, check_name
from ...home import Home, new_run_id
from .. import metrics
from ..certs import read_public_key
from ..peers import coordinator_base, copy_held_out, link_base
from ..settings import Federation
from .control import Control, write_app
from .net import (
    is_loopback,
    join_address,
    local_host,
    parse_address,
    sigterm_as_interrupt,
    start_flower,
    stop,
)


@dataclasses.dataclass
class Security:
    certs: Path | None = None  # a `tllm together certs` folder: ca.pem, server.pem/.key
    insecure: bool = False  # plain HTTP, loopback only
    allow: tuple = ()  # peers' public key files (OpenSSH, EC)
    open_nodes: bool = False  # any SuperNode may join (no node authentication)

    def tls_files(self) -> tuple[Path, Path, Path] | None:
        """(CA, certificate, key) or None for plain HTTP."""
        if self.insecure:
            return None
        if self.certs is None:
            raise TllmError(
                "give --certs DIR (made by `tllm together certs DIR --host NAME`), "
                "or --insecure for a federation on this machine only"
            )
        folder = Path(self.certs).expanduser()
        files = (folder / "ca.pem", folder / "server.pem", folder / "server.key")
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise TllmError(
                f"{missing[0]} is missing: make the folder with "
                f"`tllm together certs {folder} --host NAME`"
            )
        return files

    def node_keys(self) -> list[tuple[str, object]]:
        """(name, public key) of every peer allowed to join."""

        paths = [Path(p).expanduser() for p in self.allow]
        if self.certs is not None and (Path(self.certs).expanduser() / "nodes").is_dir():
            paths += sorted((Path(self.certs).expanduser() / "nodes").glob("*.pub"))
        unique = list(dict.fromkeys(p.resolve() for p in paths))
        return [(p.stem, read_public_key(p)) for p in unique]


def check_security(host: str, security: Security) -> tuple[tuple | None, list]:
    """(TLS files, node keys) for serving on `host`, refusing what would be unsafe."""
    if security.insecure and security.certs is not None:
        raise TllmError("--insecure and --certs contradict each other; choose one")
    if security.insecure and not is_loopback(host):
        raise TllmError(
            f"refused: serving on {host} without TLS would send adapters and "
            "node identities in clear text; make certificates with `tllm together "
            "certs DIR --host NAME` and give --certs DIR (--insecure is for "
            "127.0.0.1 only)"
        )
    tls = security.tls_files()
    keys = security.node_keys()
    if keys and tls is None:
        raise TllmError("node authentication (--allow) needs TLS: give --certs DIR")
    if tls is not None and not keys and not security.open_nodes and not is_loopback(host):
        raise TllmError(
            "no peer keys: add each peer's public key with --allow PEER.pub (`tllm "
            "together join` prints where it is), or --open to accept any SuperNode "
            "that trusts your CA"
        )
    return tls, keys


def serve(
    home: Home,
    fed: Federation,
    address: str,
    security: Security,
    eval_data: str | None = None,
    report=print,
    ready_timeout: float = 120.0,
) -> dict:
    """Run federation `fed` with the peers that join at `address`; the run's summary."""

    host, port = parse_address(address)
    tls, keys = check_security(host, security)
    fed.check()
    check_name(fed.name, "adapter name")
    base_name, hf_dir, _ = coordinator_base(home, fed.base or None)
    held_out = open_dataset(home, eval_data) if eval_data else None  # refused by name first
    run_id = new_run_id(metrics.runs_dir(home), fed.name)
    run_dir = metrics.runs_dir(home) / run_id
    run_dir.mkdir(parents=True)
    server = Home.open(run_dir / "server")
    link_base(server, base_name, hf_dir)
    if held_out is not None:
        copy_held_out(server, held_out)
    fed = dataclasses.replace(
        fed,
        run_dir=str(run_dir),
        run_id=run_id,
        server_home=str(server.path),
        base=base_name,
        eval_data=eval_data or "",
    )
    deployment = {
        "address": join_address(host, port),
        "tls": tls is not None,
        "node_auth": bool(keys),
        "allowed": [name for name, _ in keys],
    }
    metrics.save_config(run_dir, fed, deployment=deployment)
    sigterm_as_interrupt()
    link = _start_link(run_dir, host, port, tls, bool(keys))
    control = flower_run = None
    try:
        control = _connect(run_dir, link, host, port, tls, ready_timeout)
        for name, key in keys:
            control.register(key, name)
        flower_run = control.start(write_app(run_dir / "app", fed))
        metrics.save_config(run_dir, fed, deployment={**deployment, "flower_run_id": flower_run})
        report(
            {
                "serving": deployment["address"],
                "run_id": run_id,
                "flower_run_id": flower_run,
                "tls": deployment["tls"],
                "node_auth": deployment["node_auth"],
                "allowed": deployment["allowed"],
                "min_peers": fed.min_peers,
                "run_dir": str(run_dir),
            }
        )
        _follow(run_dir, link, control, flower_run, report)
    except KeyboardInterrupt:
        if control is not None and flower_run is not None:
            control.stop(flower_run)
        raise
    finally:
        if control is not None:
            control.close()
        stop(link)
    return metrics.finish(
        run_dir, homes=[str(server.path)], peers=metrics.summary(run_dir)["peers"]
    )


def _start_link(run_dir: Path, host: str, port: int, tls, node_auth: bool) -> subprocess.Popen:
    """Flower's SuperLink (guarded, link.py) in its own process group; its output
    goes to run_dir/superlink.log."""
    command = [
        sys.executable,
        "-m",
        "together_llm.together.deploy.link",
        "--host",
        host,
        "--port",
        str(port),
        "--disable-runtime-dependency-installation",
    ]
    if tls is None:
        command.append("--insecure")
    else:
        ca, cert, key = tls
        command += [
            "--ssl-ca-certfile",
            str(ca),
            "--ssl-certfile",
            str(cert),
            "--ssl-keyfile",
            str(key),
        ]
    if node_auth:
        command.append("--enable-supernode-auth")
    return start_flower(command, run_dir / "superlink.log", run_dir / "flwr")


def _connect(run_dir: Path, link, host: str, port: int, tls, timeout: float):
    """A Control API client once the SuperLink answers."""

    address = join_address(local_host(host), port)
    deadline = time.monotonic() + timeout
    control = None
    while time.monotonic() < deadline:
        if link.poll() is not None:
            raise TllmError(
                f"the SuperLink stopped at start (exit {link.returncode}): {_log_tail(run_dir)}"
            )
        if control is None:
            try:
                control = Control(address, tls[0] if tls else None)
            except Exception:
                control = None
        if control is not None and control.ready():
            return control
        time.sleep(1)
    raise TllmError(
        f"the SuperLink did not answer on {address} within {timeout:.0f}s: {_log_tail(run_dir)}"
    )


def _follow(run_dir: Path, link, control, flower_run: int, report) -> None:
    """Report each new record of metrics.jsonl until Flower says the run finished."""
    path = run_dir / "metrics.jsonl"
    shown, checked = 0, 0.0
    while True:
        records = metrics.read(path)
        for record in records[shown:]:
            report(record)
        shown = len(records)
        if link.poll() is not None:
            raise TllmError(f"the SuperLink stopped (exit {link.returncode}): {_log_tail(run_dir)}")
        if time.monotonic() - checked > 3:
            checked = time.monotonic()
            status, sub_status, details = control.status(flower_run)
            if status == "finished":
                for record in metrics.read(path)[shown:]:
                    report(record)
                if sub_status != "completed":
                    raise TllmError(
                        f"the run {sub_status or 'ended'}: {details or 'no reason given'} "
                        f"(SuperLink log: {run_dir / 'superlink.log'})"
                    )
                return
        time.sleep(1)


def _log_tail(run_dir: Path, lines: int = 6) -> str:
    path = run_dir / "superlink.log"
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    wanted = [
        line for line in text.splitlines() if "ERROR" in line or "rror" in line
    ] or text.splitlines()
    return " | ".join(line.strip() for line in wanted[-lines:]) or f"see {path}"
