"""`tllm together serve` and `join` across processes, as across machines, on loopback: Flower's
SuperLink and three SuperNodes (each `tllm` command a subprocess), TLS from `tllm together
certs`, node authentication. One joiner is killed during round 1; the run still completes
its two rounds with the others. About two to three minutes on two busy cores, most of it
Flower starting a process (torch imports included) per message and the SuperLink noticing
the killed node's missing heartbeats, hence slow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from tests.together.fed_home import FAST


def tllm(*args, **popen) -> subprocess.Popen:
    """`tllm ARGS` as its own process group (so a kill takes its SuperNode too)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("TLLM_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "together_llm.cli.main", *map(str, args)],
        cwd=ROOT,
        env=env,
        text=True,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


def vanish(process) -> None:
    """Kill a `join` and its SuperNode (which leads a process group of its own) at once,
    as when a peer's machine loses power."""
    children = open(f"/proc/{process.pid}/task/{process.pid}/children").read().split()
    for pid in map(int, children):
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    os.killpg(process.pid, signal.SIGKILL)


def end(process) -> None:
    """Stop a command that is still running (SIGTERM: it stops its Flower processes)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            vanish(process)


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def rounds_of(run_dir) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [r for r in map(json.loads, lines) if "round" in r]


@pytest.mark.slow
def test_three_joiners_over_tls_one_killed_mid_round(fed_home, tmp_path):
    from together_llm.cli.together import together
    from together_llm.together.deploy.net import free_port
    from together_llm.together.peers import coordinator_base, make_peers

    # three peer homes, each with its own share of the rows (and a held-out split)
    name, hf_dir, _ = coordinator_base(fed_home, None)
    peers, _ = make_peers(fed_home, tmp_path / "made", "sounds", 3, (name, hf_dir))
    certs = tmp_path / "certs"
    made = CliRunner().invoke(
        together, ["certs", str(certs), "--node", "peer-1", "--node", "peer-2", "--node", "peer-3"]
    )
    assert made.exit_code == 0, made.output
    address = f"127.0.0.1:{free_port()}"

    serve = tllm(
        "together",
        "serve",
        "--address",
        address,
        "--certs",
        certs,
        "--rounds",
        2,
        "--peers-min",
        3,
        "--local-steps",
        FAST["local_steps"],
        "--lr",
        FAST["lr"],
        "--batch-size",
        2,
        "--max-length",
        128,
        "--target-modules",
        FAST["target_modules"],
        "--eval-data",
        "sounds",
        "--timeout",
        150,
        "--json",
        "--home",
        fed_home.path,
    )
    joins = []
    try:
        runs = fed_home.path / "together"
        run_dir = wait_for(
            lambda: next((p for p in runs.glob("*/app")), None),
            120,
            "the SuperLink to take the run",
        ).parent

        # without the federation's CA, a join is refused at once, with the reason
        other = tmp_path / "other"
        CliRunner().invoke(together, ["certs", str(other)])
        refused = tllm(
            "together",
            "join",
            address,
            "--data",
            "sounds",
            "--root-cert",
            other / "ca.pem",
            "--home",
            peers[0],
        )
        _, err = refused.communicate(timeout=60)
        assert refused.returncode != 0 and "refused" in err and "certificate" in err, err

        for i, home in enumerate(peers, 1):
            joins.append(
                tllm(
                    "together",
                    "join",
                    address,
                    "--data",
                    "sounds",
                    "--certs",
                    certs,
                    "--key",
                    certs / "nodes" / f"peer-{i}.key",
                    "--once",
                    "--home",
                    home,
                )
            )
        # once all three joined, round 0 (the global loss before training) is written and
        # round 1's training messages go out: then peer-3's machine vanishes
        wait_for(lambda: rounds_of(run_dir), 150, "round 0")
        time.sleep(3)
        vanish(joins[2])

        out, err = serve.communicate(timeout=400)
        assert serve.returncode == 0, err[-3000:]
        summary = json.loads(out)
        # the two remaining peers leave by themselves once the final adapter arrived
        left = [process.communicate(timeout=90) for process in joins[:2]]
        assert [process.returncode for process in joins[:2]] == [0, 0], left
    finally:
        for process in [serve, *joins]:
            end(process)

    assert summary["state"] == "finished" and summary["rounds_done"] == 2
    first, second = rounds_of(run_dir)[1:]
    trained = {peer for peer, found in first["peers"].items() if "train_loss" in found}
    assert trained == {"peer-1", "peer-2"}  # the round aggregated what arrived
    assert any(f["stage"] == "train" for f in first["failures"])  # peer-3's, recorded
    assert set(second["peers"]) == {"peer-1", "peer-2"} and not second["failures"]
    assert all(p["train_loss"] > 0 and p["eval_loss"] > 0 for p in second["peers"].values())
    assert second["global_eval_loss"] < rounds_of(run_dir)[0]["global_eval_loss"]  # it learned

    # the two remaining peers hold the final adapter in their homes
    for (out, _), home in zip(left, peers[:2]):
        assert "received adapter 'together'" in out
        card = json.loads((home / "adapters" / "together" / "card.json").read_text())
        assert (
            card["provenance"] == "federated" and card["federated"]["run_id"] == summary["run_id"]
        )
        assert card["federated"]["rounds"] == 2
    assert not (peers[2] / "adapters" / "together").exists()

    config = (run_dir / "config.yaml").read_text()
    assert "tls: true" in config and "node_auth: true" in config
    shown = CliRunner().invoke(together, ["status", "--home", str(fed_home.path)])
    assert shown.exit_code == 0, shown.output
    assert summary["run_id"] in shown.output and "rounds 2/2" in shown.output


def test_serving_beyond_loopback_needs_tls_and_peer_keys(tmp_path):
    from together_llm.cli.together import together

    home = str(tmp_path / "home")
    plain = CliRunner().invoke(
        together, ["serve", "--address", "0.0.0.0:9092", "--insecure", "--home", home]
    )
    assert plain.exit_code != 0 and "without TLS" in str(plain.exception)
    CliRunner().invoke(together, ["certs", str(tmp_path / "certs"), "--host", "10.0.0.5"])
    anyone = CliRunner().invoke(
        together,
        ["serve", "--address", "0.0.0.0:9092", "--certs", str(tmp_path / "certs"), "--home", home],
    )
    assert anyone.exit_code != 0 and "--allow" in str(anyone.exception)
    joining = CliRunner().invoke(
        together, ["join", "10.0.0.5:9092", "--data", "x", "--insecure", "--home", home]
    )
    assert joining.exit_code != 0 and "without TLS" in str(joining.exception)


def test_certificates_chain_to_the_ca_for_every_host(tmp_path):
    import ssl

    from cryptography import x509

    from together_llm.cli.together import together
    from together_llm.together.certs import make_certs, read_public_key

    made = make_certs(tmp_path, ["coordinator.example.org", "10.0.0.5"], ["alice"])
    cert = x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"coordinator.example.org", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} >= {
        "10.0.0.5",
        "127.0.0.1",
    }
    context = ssl.create_default_context(cafile=made["ca"])  # the CA loads as a trust anchor
    context.load_cert_chain(made["server_cert"], made["server_key"])  # the pair matches
    assert oct((tmp_path / "server.key").stat().st_mode)[-3:] == "600"
    assert read_public_key(tmp_path / "nodes" / "alice.pub").curve.name == "secp384r1"
    again = CliRunner().invoke(together, ["certs", str(tmp_path)])
    assert again.exit_code != 0 and "exists" in str(again.exception)  # nothing overwritten


@pytest.mark.parametrize(
    "path,client,allowed",
    [
        ("/v1/fleet/pull-messages", "203.0.113.9", True),  # SuperNodes: from anywhere
        ("/v1/control/start-run", "203.0.113.9", False),  # runs: from this machine only
        ("/v1/control/register-node", "203.0.113.9", False),  # node keys: likewise
        ("/v1/runtime/pull-task-input", "203.0.113.9", False),
        ("/v1/control/start-run", "127.0.0.1", True),
        ("/v1/control/start-run", "192.0.2.1", True),  # this machine, by its own address
    ],
)
def test_the_superlink_answers_control_requests_from_its_own_machine_only(path, client, allowed):
    import asyncio

    from together_llm.together.deploy.link import LocalOnlyControl

    reached, sent = [], []

    async def app(scope, receive, send):
        reached.append(scope["path"])

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": path, "client": (client, 50000), "server": ("192.0.2.1", 9092)}
    asyncio.run(LocalOnlyControl(app)(scope, None, send))
    assert bool(reached) == allowed
    assert allowed or sent[0]["status"] == 403
