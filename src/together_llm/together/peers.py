"""The homes of a simulated federation.

`make_peers` divides a dataset of the coordinator's home (partition.py) into N new homes,
`together/<run-id>/peers/peer-<i>/`, each holding its share as the same dataset name, split
into train and held-out rows; a `server/` home beside them holds the global held-out rows.
Each new home is registered on the coordinator's base model without copying weights: an HF
directory is registered in place, and the bundled default's converted twin is linked.
`check_homes` instead checks existing homes (`--homes`): same base, the dataset present.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..data.split import split_dataset
from ..data.store import DatasetWriter, open_dataset
from ..errors import TllmError
from ..home import Home
from ..models.fingerprint import fingerprint
from ..models.registry import add_model
from ..train.model import resolve_base
from .local import peer_base
from .partition import hold_out, partition


def coordinator_base(home: Home, name: str | None) -> tuple[str, Path, str]:
    """(name, HF directory, fingerprint) of the base the federation trains on."""

    name, hf_dir = resolve_base(home, name, report=print)
    return name, hf_dir, fingerprint(hf_dir)


def link_base(peer: Home, name: str, hf_dir: Path) -> None:
    """Register base `name` (at `hf_dir`) in `peer` without copying it, and make it the
    peer's assistant model."""

    if name == "default":  # the bundled model's HF twin lives in models/default: link it
        target = peer.models_dir / "default"
        if not target.exists():
            os.symlink(hf_dir, target, target_is_directory=True)
    else:
        add_model(peer, name, str(hf_dir))
    config = peer.load_config()
    config.model = name
    peer.save_config(config)


def make_peers(
    home: Home,
    run_dir: Path,
    data: str,
    peers: int,
    base: tuple[str, Path],
    how: str = "iid",
    alpha: float = 0.5,
    by: str | None = None,
    seed: int = 0,
    global_fraction: float = 0.1,
    eval_fraction: float = 0.2,
) -> tuple[list[Path], Path]:
    """(peer home paths, server home path) for a simulation on `home`'s dataset `data`."""

    dataset = open_dataset(home, data)
    if dataset.has_splits:  # its own held-out rows are the global held-out set
        rows, held = list(dataset.rows("train")), list(dataset.rows("eval"))
    else:
        rows, held = hold_out(list(dataset.rows()), global_fraction, seed)
    parts = partition(rows, peers, how, alpha, by, seed)
    server = Home.open(run_dir / "server")
    link_base(server, *base)
    write_rows(server, data, dataset.kind, held, f"{data}: global held-out rows")
    paths = []
    for i, part in enumerate(parts, 1):
        peer = Home.open(run_dir / "peers" / f"peer-{i}")
        link_base(peer, *base)
        write_rows(peer, data, dataset.kind, part, f"{data}: partition {i} of {peers} ({how})")
        split_dataset(peer, data, eval_fraction, seed)
        paths.append(peer.path)
    return paths, server.path


def copy_held_out(server: Home, dataset) -> str:
    """Dataset `dataset`'s held-out rows (all of them if it has no split) as the global
    held-out set of the run's server home, under its own name; that name."""
    rows = list(dataset.rows("eval")) if dataset.has_splits else list(dataset.rows())
    write_rows(
        server,
        dataset.name,
        dataset.kind,
        rows,
        f"{dataset.name}: the federation's global held-out rows",
    )
    return dataset.name


def write_rows(home: Home, name: str, kind: str, rows: list, source: str) -> None:
    """Write `rows` as a new dataset `name` of `home`."""

    with DatasetWriter(home, name, kind, source=source, format=kind) as out:
        for row in rows:
            out.add(row)
        out.commit()


def check_homes(
    paths: list[str], data: str, fingerprint: str, adapter: str, overwrite: bool
) -> list[Path]:
    """The homes of `--homes`, each checked before anything runs: it exists, holds dataset
    `data` with a held-out split, uses the federation's base, has no adapter named
    `adapter` (unless overwriting), and its folder name (its peer name) is unique."""

    homes, names = [], set()
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        if not (path / "assistant.yaml").is_file():
            raise TllmError(f"{path} is not a home (no assistant.yaml)")
        if path.name in names:
            raise TllmError(
                f"two homes are named {path.name!r}: peers are told apart by their "
                "folder names; rename one"
            )
        names.add(path.name)
        home = Home.open(path)
        dataset = open_dataset(home, data)
        if not dataset.has_splits:
            raise TllmError(
                f"dataset {data!r} of {path} has no held-out split: run `tllm data "
                f"split {data} --home {path}` first"
            )
        _, _, own = peer_base(home)
        if own != fingerprint:
            raise TllmError(
                f"{path} uses another base model (fingerprint {own}, the "
                f"federation's is {fingerprint})"
            )
        if (home.adapters_dir / adapter).exists() and not overwrite:
            raise TllmError(
                f"{path} already has an adapter named {adapter!r}; choose another "
                "--name or add --overwrite"
            )
        homes.append(path)
    return homes
