"""`tllm together simulate`: a whole federation on this machine, on Flower's simulation
engine (Ray): peer homes made from a dataset's partitions (peers.py) or existing homes, the
package's ServerApp and ClientApp (apps.py), one ClientApp at a time per CPU core.

Afterwards every participating home holds the final adapter (each peer saves it when the
last round's evaluate message brings it; a peer that missed that message gets the server's
copy), metrics.jsonl has every round, plots/curves.png the curves.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from pathlib import Path

from ..adapters.card import CARD_FILE, AdapterCard
from ..data.store import list_datasets, open_dataset
from ..errors import TllmError, check_name
from ..home import Home, new_run_id, replace_dir
from . import metrics
from .peers import check_homes, coordinator_base, copy_held_out, link_base, make_peers
from .settings import Federation


def backend_config(verbose: bool = False) -> dict:
    """Ray sized for a small machine: one CPU core per ClientApp (so as many run at once as
    there are cores), no GPU, no dashboard, a small object store (adapters are small). The
    workers' own output (library warnings, progress bars) reaches the terminal only when
    `verbose`; a failing peer is reported either way, by the server."""
    cores = os.cpu_count() or 1
    return {
        "client_resources": {"num_cpus": 1, "num_gpus": 0},
        "init_args": {
            "num_cpus": cores,
            "num_gpus": 0,
            "include_dashboard": False,
            "object_store_memory": 256 * 1024 * 1024,
            "logging_level": "ERROR",
            "log_to_driver": verbose,
        },
    }


def simulate(
    home: Home,
    fed: Federation,
    peers: int | None = None,
    homes: list[str] | None = None,
    split: str = "iid",
    alpha: float = 0.5,
    by: str | None = None,
    global_fraction: float = 0.1,
    overwrite: bool = False,
    report=print,
    mods=(),
    verbose: bool = False,
) -> dict:
    """Run federation `fed` over `peers` new peer homes (or existing `homes`); return the
    run's summary (metrics.summary). `mods` (tests): extra Flower mods for every ClientApp."""

    fed.check()
    check_name(fed.name, "adapter name")
    if not fed.data:
        raise TllmError("no dataset: give --data NAME")
    if (peers is None) == (homes is None):
        raise TllmError("give either --peers N (new peer homes from --data) or --homes H1,H2,...")
    base_name, hf_dir, fingerprint = coordinator_base(home, fed.base or None)
    run_id = new_run_id(metrics.runs_dir(home), fed.name)
    run_dir = metrics.runs_dir(home) / run_id
    if homes is not None:
        paths = check_homes(homes, fed.data, fingerprint, fed.name, overwrite)
        run_dir.mkdir(parents=True)
        server = Home.open(run_dir / "server")
        link_base(server, base_name, hf_dir)
        eval_data = _global_held_out(home, server, fed.data)
        server_path = server.path
    else:
        assert peers is not None  # either peers or homes (checked above)
        open_dataset(home, fed.data)  # refuse an unknown dataset before making anything
        run_dir.mkdir(parents=True)
        paths, server_path = make_peers(
            home,
            run_dir,
            fed.data,
            peers,
            (base_name, hf_dir),
            split,
            alpha,
            by,
            fed.seed,
            global_fraction,
        )
        eval_data = fed.data
    fed = dataclasses.replace(
        fed,
        run_dir=str(run_dir),
        run_id=run_id,
        server_home=str(server_path),
        base=base_name,
        eval_data=eval_data,
        min_peers=len(paths),
    )
    metrics.save_config(
        run_dir, fed, split=split, alpha=alpha, by=by, homes=[str(p) for p in paths]
    )
    report({"started": run_id, "peers": [p.name for p in paths], "run_dir": str(run_dir)})
    run(fed, [(str(p), fed.data) for p in paths], report, mods, verbose)
    received = _deliver(fed, paths, Path(server_path))
    return metrics.finish(run_dir, homes=[str(p) for p in received])


def run(
    fed: Federation, peers: list[tuple[str, str]], report=print, mods=(), verbose: bool = False
) -> None:
    """Run the apps on Flower's simulation engine, one virtual SuperNode per peer."""

    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    from flwr.simulation import run_simulation

    from .apps import make_client_app, make_server_app

    flower = logging.getLogger("flwr")
    level = flower.level
    if not verbose:
        flower.setLevel(logging.WARNING)  # our own line per round instead of Flower's INFO
    try:
        run_simulation(
            server_app=make_server_app(fed, report),
            client_app=make_client_app(peers, mods),
            num_supernodes=len(peers),
            backend_config=backend_config(verbose),
        )
    finally:
        flower.setLevel(level)


def _deliver(fed: Federation, paths: list[Path], server: Path) -> list[Path]:
    """Every home that holds this run's adapter, after giving the server's copy to any peer
    that missed the last round (it failed or timed out)."""

    source = server / "adapters" / fed.name
    if not (source / "adapter_model.safetensors").is_file():
        raise TllmError(
            f"the federation ended without a final adapter (see {fed.run_dir}/metrics.jsonl)"
        )
    received = []
    for path in paths:
        target = path / "adapters" / fed.name
        card_path = target / CARD_FILE
        federated = AdapterCard.read(card_path).federated if card_path.is_file() else None
        if (federated.run_id if federated else None) != fed.run_id:
            partial = target.with_name(f".tmp-{fed.name}-{os.getpid()}")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(source, partial)
            replace_dir(partial, target)
        received.append(path)
    return received


def _global_held_out(home: Home, server: Home, data: str) -> str:
    """With --homes: the coordinator's own dataset `data`, if it has a held-out split, is the
    global held-out set (copied to the server home); else there is none ("")."""

    source = next((d for d in list_datasets(home) if d.name == data), None)
    if source is None or not source.has_splits:
        return ""
    return copy_held_out(server, source)
