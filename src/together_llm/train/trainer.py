"""The protocol between a run (run.py) and the two ways it trains: our own loop
(loop_trainer.py: pt, sft, seq2seq, classify) and a TRL trainer (trl_trainer.py: dpo, orpo,
kto, rm, rl).

run.py owns what every run does the same way (the base and its context, the processes, the
run folder and resuming, the log, the card, the plot, the metrics, saving); a `Trainer`
does only what differs, in four calls made in this order:

    check_base(hf_dir, recipe)  -> (config.json, task)   refuse before anything loads
    prepare(plan)                                        read the data, refuse what cannot
                                                         be learned: the run folder is not
                                                         open yet
    latest_checkpoint(folder)                            what --resume continues from
    train(plan, run) -> Outcome                          every process; rank 0 writes
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..data.store import Dataset
from ..home import Home
from ..methods import Method
from .recipe import Recipe
from .run_folder import RunFolder
from .stages import Stage

Report = Callable[[str], None]


@dataclass(frozen=True)
class Base:
    """The base model of a run, once the registry agreed to train it."""

    hf_dir: Path
    config: dict[str, Any]  # its config.json
    task: str  # what it loads for: the stage's task (rm: a scalar head on its family)
    bf16: bool  # bf16 autocast (model.mixed_precision)
    start_weights: Path | None = None  # --start-from: the adapter weights training continues


@dataclass(frozen=True)
class Plan:
    """What a run knows before its folder opens."""

    home: Home
    recipe: Recipe
    stage: Stage
    method: Method
    dataset: Dataset
    base: Base
    world: int  # processes (torchrun), and this one's rank
    rank: int
    report: Report  # says nothing on ranks other than 0
    show_progress: bool  # a progress bar on this process
    stop_after: int | None  # tests: stop after this step, as Ctrl-C would


@dataclass
class Outcome:
    """What a trainer hands back: the trained model and what the metrics report."""

    model: Any
    tokenizer: Any
    history: list[dict[str, Any]]  # the log records, for the plot
    steps: int
    train_loss: float | None
    eval_loss: float | None
    tokens: float  # tokens trained on
    seconds: float  # training time
    examples: int  # training examples it learned from
    eval_examples: int
    # the trained weights gathered on rank 0 from a sharded model; None: save the model's own
    weights: dict[str, Any] | None
    extra: dict[str, Any] = field(default_factory=dict)  # the trainer's own metrics


class Trainer(Protocol):
    def check_base(self, hf_dir: Path, recipe: Recipe) -> tuple[dict[str, Any], str]:
        """(config.json, the task to load the base for), refused unless the registry
        agrees to train this base with the recipe's method."""
        ...

    def prepare(self, plan: Plan) -> None:
        """Read the dataset and refuse what cannot be learned, before the run folder opens."""
        ...

    def latest_checkpoint(self, folder: Path) -> Path | None:
        """The newest checkpoint this trainer wrote in `folder`, or None."""
        ...

    def train(self, plan: Plan, run: RunFolder) -> Outcome:
        """Train (resuming from `run.checkpoint` if any), logging into `run.log`; every
        process calls this. Raises stopping.Interrupted after saving a checkpoint."""
        ...
