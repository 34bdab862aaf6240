"""A federated run's folder, `together/<run-id>/` in the coordinator's home:

    config.yaml      the federation's settings (settings.Federation)
    metrics.jsonl    one line per round (recorder.py): per-peer train and held-out loss,
                     the global held-out loss, failures, bytes each way, seconds; round 0
                     is the global loss before training; a last line {"finished": ...}
    plots/curves.png the curves
    peers/<name>/    the peer homes `simulate` made
    server/          the coordinator's home for the run (its base, the global held-out set)

`tllm together status` reads only these files.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import yaml

from ..errors import TllmError


def runs_dir(home) -> Path:
    return home.together_dir


def save_config(run_dir: Path, fed, **extra) -> None:
    """config.yaml: the federation's settings (a settings.Federation) and `extra`."""

    data = {**dataclasses.asdict(fed), **extra}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def finish(run_dir: Path, **finished) -> dict:
    """Close the run: its last line {"finished": {time, **finished}}, the plot; its summary."""

    append(
        run_dir / "metrics.jsonl",
        {"finished": {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **finished}},
    )
    plot(run_dir)
    return summary(run_dir)


def append(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a crash: the others still count
    return records


def summary(run_dir: Path) -> dict:
    """What `status` shows of one run."""

    records = read(run_dir / "metrics.jsonl")
    rounds = [r for r in records if "round" in r]
    finished = next((r["finished"] for r in records if "finished" in r), None)
    config_path = run_dir / "config.yaml"
    config = (
        yaml.safe_load(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    )
    peers = sorted({name for r in rounds for name in r.get("peers", {})})
    last = rounds[-1] if rounds else {}
    return {
        "run_id": run_dir.name,
        "state": "finished" if finished else "unfinished",
        "strategy": config.get("strategy"),
        "aggregate": config.get("aggregate"),
        "data": config.get("data"),
        "adapter": config.get("name"),
        "rounds_done": max((r["round"] for r in rounds), default=0),
        "rounds": config.get("rounds"),
        "peers": peers,
        "failures": sum(len(r.get("failures", [])) for r in rounds),
        "global_eval_loss": last.get("global_eval_loss"),
        "first_global_eval_loss": rounds[0].get("global_eval_loss") if rounds else None,
        "bytes_up": sum(r.get("bytes_up", 0) for r in rounds),
        "bytes_down": sum(r.get("bytes_down", 0) for r in rounds),
        "seconds": round(sum(r.get("seconds", 0) for r in rounds), 1),
        "homes": (finished or {}).get("homes", []),
    }


def list_runs(home) -> list[Path]:
    folder = runs_dir(home)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / "metrics.jsonl").is_file())


def find_run(home, run_id: str | None) -> Path:
    runs = list_runs(home)
    if not runs:
        raise TllmError(f"no federated runs in {runs_dir(home)} yet (tllm together simulate)")
    if run_id is None:
        return runs[-1]
    for run in runs:
        if run.name == run_id:
            return run
    raise TllmError(f"no run {run_id!r}; runs: {', '.join(r.name for r in runs)}")


def plot(run_dir: Path) -> Path:
    """plots/curves.png: each peer's train and held-out loss and the global held-out loss
    per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r for r in read(run_dir / "metrics.jsonl") if "round" in r]
    peers = sorted({name for r in rounds for name in r.get("peers", {})})
    figure, (train_axes, eval_axes) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for name in peers:
        for axes, key in ((train_axes, "train_loss"), (eval_axes, "eval_loss")):
            points = [
                (r["round"], r["peers"][name][key])
                for r in rounds
                if r.get("peers", {}).get(name, {}).get(key) is not None
            ]
            if points:
                axes.plot(*zip(*points), "o-", alpha=0.7, label=name)
    points = [
        (r["round"], r["global_eval_loss"]) for r in rounds if r.get("global_eval_loss") is not None
    ]
    if points:
        eval_axes.plot(*zip(*points), "s-", color="black", linewidth=2, label="global held-out")
    train_axes.set_title("training loss per peer")
    eval_axes.set_title("held-out loss (global adapter)")
    for axes in (train_axes, eval_axes):
        axes.set_xlabel("round")
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
    train_axes.set_ylabel("loss per learned token")
    figure.suptitle(run_dir.name)
    figure.tight_layout()
    path = run_dir / "plots" / "curves.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
