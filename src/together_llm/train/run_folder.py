"""A run's folder, `runs/<id>/`, and its log: a new run gets a new folder with its resolved
recipe; `--resume` finds the latest unfinished run of the same name, with the same recipe,
and its newest checkpoint.

    config.yaml     the resolved recipe (a recipe file: `tllm train runs/<id>/config.yaml`)
    log.jsonl       one JSON record a line (RunLog)
    metrics.json    written last (run.py); its presence marks the run finished
    plots/loss.png  the loss curve (plot.py)
    checkpoints/    the trainer's own (checkpoint.py, or the TRL Trainer's)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import TllmError
from ..home import Home, new_run_id
from .processes import broadcast
from .recipe import Recipe, save_recipe

# Fields a resumed run may change: they decide what is reported, not what is learned.
FREE_ON_RESUME = ("resume", "overwrite", "eval_every", "save_every", "logging_every", "fixed")

# finds the newest checkpoint in a checkpoints/ folder (each trainer writes its own kind)
FindCheckpoint = Callable[[Path], Path | None]


def runs_dir(home: Home) -> Path:
    return home.runs_dir


class RunLog:
    """runs/<id>/log.jsonl: one record a line (step first); only rank 0 writes."""

    def __init__(self, path: Path, write: bool) -> None:
        self.path, self.write = path, write

    def append(self, record: dict[str, Any]) -> None:
        if self.write:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def rewrite(self, history: list[dict[str, Any]]) -> None:
        """Keep exactly `history`: on resuming, the lines logged past the checkpoint go."""
        if self.write:
            self.path.write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line]


@dataclass(frozen=True)
class RunFolder:
    path: Path
    checkpoint: Path | None  # where a resumed run continues from; None for a new run
    log: RunLog

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"


def open_run(home: Home, recipe: Recipe, rank: int, find_checkpoint: FindCheckpoint) -> RunFolder:
    """A new run folder (created by rank 0, its id shared with the others), or with
    --resume the latest unfinished run of the same name and its newest checkpoint."""
    if recipe.resume:
        path = _run_to_resume(home, recipe, find_checkpoint)
        checkpoint = find_checkpoint(path / "checkpoints")
    else:
        run_id = broadcast(new_run_id(runs_dir(home), str(recipe.name)) if rank == 0 else None)
        path, checkpoint = runs_dir(home) / run_id, None
        if rank == 0:
            path.mkdir(parents=True)
            save_recipe(recipe, path / "config.yaml")
    return RunFolder(path, checkpoint, RunLog(path / "log.jsonl", write=rank == 0))


def has_interrupted_run(home: Home, name: str) -> bool:
    """Whether a run that trains `name` stopped before its end with a checkpoint saved
    (what --resume goes on from)."""
    for config in runs_dir(home).glob("*/config.yaml"):
        saved = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        if saved.get("name") == name and not (config.parent / "metrics.json").exists():
            if any((config.parent / "checkpoints").glob("*")):
                return True
    return False


def _run_to_resume(home: Home, recipe: Recipe, find_checkpoint: FindCheckpoint) -> Path:
    candidates = []
    for config in sorted(runs_dir(home).glob("*/config.yaml")):
        saved = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        if saved.get("name") == recipe.name and not (config.parent / "metrics.json").exists():
            if find_checkpoint(config.parent / "checkpoints") is not None:
                candidates.append((config.parent, saved))
    if not candidates:
        raise TllmError(
            f"no interrupted run of {recipe.name!r} with a checkpoint to resume "
            f"in {runs_dir(home)}; run without --resume to start one"
        )
    path, saved = candidates[-1]
    now, defaults = recipe.to_dict(), Recipe().to_dict()
    # A key the saved recipe lacks was added since that run started: it ran with the default.
    changed = [
        f"{key}: {saved.get(key, defaults[key])!r} -> {now[key]!r}"
        for key in now
        if key not in FREE_ON_RESUME and saved.get(key, defaults[key]) != now[key]
    ]
    if changed:
        raise TllmError(
            f"run {path.name} was started with a different recipe ({'; '.join(changed)}); "
            "resume with the same settings, or start a new run without --resume"
        )
    return path
