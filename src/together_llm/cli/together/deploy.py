"""`tllm together certs | serve | join`: a federation across machines (Flower's SuperLink
and SuperNodes). Parsing and printing only; the work is in together/deploy*.py, certs.py."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ...errors import TllmError
from ...together.certs import make_certs
from ...together.deploy.coordinator import Security
from ...together.deploy.coordinator import serve as serve_federation
from ...together.deploy.join import join as join_federation
from ..common import home_options, open_home
from . import _show
from .options import federation, federation_options


@click.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="A name or IP address peers use to reach the "
    "coordinator (repeatable); localhost and 127.0.0.1 are always included.",
)
@click.option(
    "--node",
    "nodes",
    multiple=True,
    help="Also make a node key pair for this peer "
    "name (repeatable); better: each peer's own, made by `tllm together join`.",
)
@click.option("--overwrite", is_flag=True, help="Replace files already in FOLDER.")
@click.option("--json", "as_json", is_flag=True, help="Print the paths written as JSON.")
def certs(folder, hosts, nodes, overwrite, as_json):
    """Make a federation's TLS certificates: a CA (ca.pem, for every peer; ca.key stays
    here) and the SuperLink's certificate and key for --host names.

    \b
    Examples:
      tllm together certs ~/fed-certs --host coordinator.example.org --host 192.168.1.20
      tllm together certs ./certs --host 10.0.0.5 --node alice --node bob
    """

    written = make_certs(Path(folder), list(hosts), list(nodes), overwrite)
    if as_json:
        click.echo(json.dumps(written, indent=2))
        return
    click.echo(f"CA: {written['ca']} (give it to every peer)")
    click.echo(f"SuperLink certificate for {', '.join(written['hosts'])}: {written['server_cert']}")
    for name, paths in written["nodes"].items():
        click.echo(f"node {name}: {paths['key']} (private, for that peer) and {paths['pub']}")


@click.command()
@click.option(
    "--address",
    default="127.0.0.1:9092",
    show_default=True,
    help="Where the SuperLink listens (peers and this machine), e.g. 0.0.0.0:9092.",
)
@click.option(
    "--certs",
    "certs_dir",
    type=click.Path(file_okay=False),
    help="The folder `tllm together certs` made: TLS, and nodes/*.pub are allowed.",
)
@click.option("--insecure", is_flag=True, help="No TLS: only on a loopback address.")
@click.option(
    "--allow",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A peer's public key file (repeatable): only allowed peers can join.",
)
@click.option(
    "--open",
    "open_nodes",
    is_flag=True,
    help="Accept any SuperNode that trusts the CA (no node authentication).",
)
@click.option(
    "--eval-data",
    help="A dataset of this home whose held-out rows measure the global adapter every round.",
)
@click.option(
    "--peers-min",
    "min_peers",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="Peers that must have joined before the first round starts.",
)
@federation_options
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as JSON.")
@home_options
def serve(
    address, certs_dir, insecure, allow, open_nodes, eval_data, as_json, home_dir, **settings
):
    """Coordinate a federation across machines: start Flower's SuperLink at --address and
    run R rounds with the peers that join (`tllm together join`); each trains the shared
    adapter on its own data and sends only the adapter's tensors. Rounds are printed and
    stored as in `simulate` (tllm together status).

    \b
    Examples:
      tllm together certs ~/fed-certs --host coordinator.example.org
      tllm together serve --address 0.0.0.0:9092 --certs ~/fed-certs \\
          --allow alice.pub --allow bob.pub --rounds 5 --peers-min 2
      tllm together serve --insecure --address 127.0.0.1:9092 --peers-min 3
    """

    fed = federation(settings)
    security = Security(
        certs=Path(certs_dir) if certs_dir else None,
        insecure=insecure,
        allow=tuple(allow),
        open_nodes=open_nodes,
    )
    summary = serve_federation(
        open_home(home_dir),
        fed,
        address,
        security,
        eval_data=eval_data,
        report=lambda record: _show_serve(record, fed.rounds),
    )
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"done: run {summary['run_id']}, {summary['rounds_done']} rounds with "
        f"{', '.join(summary['peers']) or 'no peers'} (tllm together status {summary['run_id']})"
    )


def _show_serve(record: dict, rounds: int) -> None:
    if "serving" in record:
        security = ("TLS" if record["tls"] else "no TLS") + (
            f", allowed peers: {', '.join(record['allowed'])}"
            if record["node_auth"]
            else ", any peer may join"
        )
        click.echo(
            f"run {record['run_id']}: serving at {record['serving']} ({security}); "
            f"waiting for {record['min_peers']} peers",
            err=True,
        )
    elif "round" in record:
        _show(record, rounds)


@click.command()
@click.argument("address")
@click.option(
    "--data",
    "-d",
    required=True,
    help="This home's dataset to train on (needs a "
    "held-out split: tllm data split NAME). It never leaves this machine.",
)
@click.option(
    "--root-cert",
    type=click.Path(dir_okay=False),
    help="The coordinator's CA certificate (ca.pem).",
)
@click.option(
    "--certs", "certs_dir", type=click.Path(file_okay=False), help="A certs folder holding ca.pem."
)
@click.option(
    "--key",
    type=click.Path(dir_okay=False),
    help="This node's private key (default: "
    "the home's own, made on first join: together/node/node.key).",
)
@click.option("--insecure", is_flag=True, help="No TLS: only to a loopback address.")
@click.option("--once", is_flag=True, help="Leave after the first federated adapter arrives.")
@click.option(
    "--wait",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds to keep trying while nothing answers at ADDRESS.",
)
@click.option("--json", "as_json", is_flag=True, help="Print events as JSON lines.")
@home_options
def join(address, data, root_cert, certs_dir, key, insecure, once, wait, as_json, home_dir):
    """Join the federation coordinated at ADDRESS (HOST:PORT) with this home's dataset: each
    round this home trains the shared adapter on its own rows and sends back only the
    adapter's tensors; the final adapter lands in this home.

    \b
    Examples:
      tllm together join coordinator.example.org:9092 --data my-notes --root-cert ca.pem
      tllm together join 127.0.0.1:9092 --data my-notes --insecure --once
    """
    if root_cert and certs_dir:
        raise TllmError("give --root-cert or --certs, not both")
    ca = Path(root_cert) if root_cert else (Path(certs_dir) / "ca.pem" if certs_dir else None)
    try:
        join_federation(
            open_home(home_dir),
            address,
            data,
            ca=ca,
            insecure=insecure,
            key=Path(key) if key else None,
            once=once,
            wait=wait,
            report=lambda event: (
                click.echo(json.dumps(event)) if as_json else _show_join(event, address)
            ),
        )
    except KeyboardInterrupt:
        click.echo("left the federation", err=True)


def _show_join(event: dict, address: str) -> None:
    if "key" in event:
        click.echo(f"node key: {event['key']} (the coordinator allows it: --allow)", err=True)
    elif event.get("event") == "joined":
        click.echo(f"joined {address} as node {event.get('node_id')}", err=True)
    elif event.get("event") in ("train", "evaluate"):
        click.echo(
            f"{'training' if event['event'] == 'train' else 'evaluating'} the shared adapter",
            err=True,
        )
    elif "adapter" in event:
        click.echo(
            f"received adapter {event['adapter']!r} from run {event['run_id']} "
            f"({event['rounds']} rounds): {event['path']}"
        )
