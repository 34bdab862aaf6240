"""`tllm together`: federated learning between assistants (Flower). This module: the group,
`simulate` and `status`; `evolve` lives in evolve.py."""

from __future__ import annotations

import json

import click
import yaml

from ...together import metrics
from ...together.simulate import simulate as run
from ..common import home_options, open_home
from ..main import lazy_group
from .options import federation, federation_options

SUBCOMMANDS = {
    "simulate": (
        "together_llm.cli.together:simulate",
        "Run a federation of N peers on this machine (Flower's simulation engine).",
    ),
    "status": ("together_llm.cli.together:status", "Show federated runs, their rounds and peers."),
    "evolve": (
        "together_llm.cli.together.evolve:evolve",
        "Merge a population of adapters over generations; keep the best.",
    ),
    "certs": (
        "together_llm.cli.together.deploy:certs",
        "Make a federation's TLS certificates (and node keys).",
    ),
    "serve": (
        "together_llm.cli.together.deploy:serve",
        "Coordinate a federation across machines (Flower SuperLink).",
    ),
    "join": (
        "together_llm.cli.together.deploy:join",
        "Join a federation with this home's private data (Flower SuperNode).",
    ),
}


@click.group(cls=lazy_group(SUBCOMMANDS))
def together():
    """Co-evolve with other assistants: train one shared adapter on everyone's private data
    (only adapter tensors travel), and evolve adapters by merging.

    \b
    Examples:
      tllm together simulate --peers 3 --rounds 5 --data my-chats
      tllm together simulate --peers 4 --data topics --split dirichlet --alpha 0.3 --by topic
      tllm together status
    """


def _homes(ctx, param, value):
    return [h.strip() for h in value.split(",") if h.strip()] if value else None


@click.command()
@click.option(
    "--data",
    "-d",
    required=True,
    help="Dataset to federate: with --peers, this home's "
    "dataset is divided among the new peers; with --homes, each home's own dataset of "
    "this name.",
)
@click.option(
    "--peers", type=click.IntRange(1), help="Make N peer homes from partitions of --data."
)
@click.option(
    "--homes", callback=_homes, help="Comma-separated existing homes to federate instead."
)
@click.option(
    "--split",
    type=click.Choice(("iid", "dirichlet")),
    default="iid",
    show_default=True,
    help="How --peers divides the rows.",
)
@click.option(
    "--alpha",
    type=float,
    default=0.5,
    show_default=True,
    help="Dirichlet concentration: small = peers differ more.",
)
@click.option(
    "--by",
    help="dirichlet: the row field whose values are skewed across peers "
    "(e.g. label, topic); without it, the peers' sizes are.",
)
@click.option(
    "--global-eval",
    "global_fraction",
    type=float,
    default=0.1,
    show_default=True,
    help="Fraction of --data held out as the global evaluation set (a dataset with a "
    "train/eval split uses its eval split).",
)
@federation_options
@click.option("--overwrite", is_flag=True, help="With --homes: replace an adapter named --name.")
@click.option("--verbose", is_flag=True, help="Show Flower's and the peers' own logs.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as JSON.")
@home_options
def simulate(
    data,
    peers,
    homes,
    split,
    alpha,
    by,
    global_fraction,
    overwrite,
    verbose,
    as_json,
    home_dir,
    **settings,
):
    """Simulate a federation on this machine: N peers train one shared LoRA adapter, each on
    its own rows, for R rounds (Flower's simulation engine, one peer per CPU core at a time).
    Per round it prints and stores (together/<run-id>/metrics.jsonl) each peer's training and
    held-out loss, the global held-out loss, bytes sent each way and the time; the final
    adapter lands in every participating home, and plots/curves.png shows the curves.

    \b
    Examples:
      tllm together simulate --peers 3 --rounds 5 --data my-chats
      tllm together simulate --peers 4 --data labelled --split dirichlet --alpha 0.3 --by label
      tllm together simulate --homes ~/alice,~/bob --data private --strategy fedprox --mu 0.1
      tllm together simulate --peers 3 --data my-chats --dp-noise 0.5 --dp-clip 1.0
    """

    fed = federation(settings, data=data)
    home = open_home(home_dir)
    summary = run(
        home,
        fed,
        peers=peers,
        homes=homes,
        split=split,
        alpha=alpha,
        by=by,
        global_fraction=global_fraction,
        overwrite=overwrite,
        report=lambda record: None if as_json else _show(record, fed.rounds),
        verbose=verbose,
    )
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"done: adapter {fed.name!r} in {len(summary['homes'])} homes; run "
        f"{summary['run_id']} (tllm together status {summary['run_id']})"
    )


def _show(record: dict, rounds: int, err: bool = True) -> None:
    """One line per round (and one per failed peer); on stderr while a run goes on."""
    if "started" in record:
        click.echo(f"run {record['started']}: peers {', '.join(record['peers'])}", err=True)
        return
    peers = record.get("peers", {})
    train = [p["train_loss"] for p in peers.values() if p.get("train_loss") is not None]
    held = [p["eval_loss"] for p in peers.values() if p.get("eval_loss") is not None]
    parts = [f"round {record['round']}/{rounds}"]
    if record["round"] > 0:
        parts.append(f"peers {len(train)}/{record.get('sampled', len(train))}")
        parts.append(f"train {_mean(train)}")
        parts.append(f"peers' held-out {_mean(held)}")
    if record.get("global_eval_loss") is not None:
        parts.append(f"global held-out {record['global_eval_loss']:.4f}")
    if record["round"] > 0:
        parts.append(
            f"up {_size(record.get('bytes_up', 0))} down {_size(record.get('bytes_down', 0))}"
        )
    parts.append(f"{record.get('seconds', 0):.1f}s")
    click.echo("  ".join(parts), err=err)
    for failure in record.get("failures", []):
        click.echo(f"  {failure['peer']} failed ({failure['stage']}): {failure['reason']}", err=err)


def _mean(values: list) -> str:
    return f"{sum(values) / len(values):.4f}" if values else "-"


def _size(count: float) -> str:  # bytes; divided down to the unit shown
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return str(count)


@click.command()
@click.argument("run_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@home_options
def status(run_id, as_json, home_dir):
    """Show federated runs of this home; with RUN_ID, that run round by round.

    \b
    Examples:
      tllm together status
      tllm together status 20260101-120000-together --json
    """

    home = open_home(home_dir)
    if run_id is None:
        runs = [metrics.summary(path) for path in metrics.list_runs(home)]
        if as_json:
            click.echo(json.dumps(runs, indent=2))
        elif not runs:
            click.echo("no federated runs yet (tllm together simulate)")
        for run in [] if as_json else runs:
            loss = run["global_eval_loss"]
            click.echo(
                f"{run['run_id']}  {run['state']}  rounds {run['rounds_done']}/{run['rounds']}  "
                f"peers {len(run['peers'])}  {run['strategy']}/{run['aggregate']}  "
                f"global held-out {'-' if loss is None else f'{loss:.4f}'}"
                f"{_served(metrics.runs_dir(home) / run['run_id'])}"
            )
        return
    path = metrics.find_run(home, run_id)
    run = metrics.summary(path)
    rounds = [r for r in metrics.read(path / "metrics.jsonl") if "round" in r]
    if as_json:
        click.echo(json.dumps({**run, "per_round": rounds}, indent=2))
        return
    click.echo(
        f"{run['run_id']}: {run['state']}, {run['strategy']}/{run['aggregate']} on "
        f"{run['data']}, adapter {run['adapter']}, peers {', '.join(run['peers'])}"
        f"{_served(path)}"
    )
    for record in rounds:
        _show(record, run["rounds"], err=False)
    click.echo(f"plot: {path / 'plots' / 'curves.png'}")


def _served(run_dir) -> str:
    """Where a deployed run (`tllm together serve`) was served, and how; "" for a simulation."""

    path = run_dir / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    deployment = (config or {}).get("deployment")
    if not deployment:
        return ""
    how = ("TLS" if deployment.get("tls") else "no TLS") + (
        ", node auth" if deployment.get("node_auth") else ""
    )
    return f"  served at {deployment.get('address')} ({how})"
