"""One training run, from a checked recipe to a saved adapter (or, for `full`, a model), in
`runs/<id>/` (run_folder.py). This is the skeleton every run follows, whichever trainer
trains it (trainer.py: our own loop for pt, sft, seq2seq and classify, TRL for dpo, orpo,
kto, rm and rl):

1. the stage, the dataset, the method and the result's name are checked;
2. the base is resolved and checked by the family registry, the recipe's max_length is fitted
   to its context, and mixed precision decided (model.py);
3. under torchrun the processes join their group; only rank 0 speaks and writes; on a small
   dataset the settings that teach it are chosen (auto_recipe.py);
4. the trainer prepares (reads the data, refuses what cannot be learned), and only then the
   run folder opens (or, with --resume, the interrupted run's with its checkpoint);
5. the trainer trains, logging into the run's log.jsonl;
6. rank 0 saves the result with its card (adapters/card.py, adapters/save.py), plots the
   loss and writes metrics.json (run_record.py), whose presence marks the run finished.

Everything that can be refused from the recipe, the dataset card and the base's config.json
is refused before torch is imported.
"""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Any

from ..adapters.card import AdapterCard
from ..adapters.save import check_free, save_result
from ..data.store import open_dataset
from ..errors import TllmError
from ..home import Home
from ..methods import get_method
from ..models.fingerprint import fingerprint
from . import auto_recipe
from .loop_trainer import LoopTrainer
from .model import adapter_to_continue, fit_context, mixed_precision, resolve_base
from .plot import plot_loss
from .processes import init_distributed, leave_distributed
from .recipe import Recipe
from .run_folder import RunFolder, open_run, runs_dir
from .run_record import RunRecord
from .stages import check_kind, check_method, get_stage
from .trainer import Base, Outcome, Plan, Report, Trainer
from .trl_trainer import TrlTrainer

# runs_dir: where evaluate/ finds the runs; RunRecord: what train_record hands back
__all__ = ["RunRecord", "runs_dir", "train", "train_model", "train_record"]


def _silent(message: str) -> None:
    """The report of every process but rank 0: one process speaks for all."""


def train(
    home: Home,
    recipe: Recipe,
    report: Report = _silent,
    show_progress: bool = False,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train as `recipe` says; return the metrics (also in runs/<id>/metrics.json).
    `stop_after` (tests) interrupts the run after that step, as Ctrl-C would."""
    return train_model(home, recipe, report, show_progress, stop_after)[0]


def train_model(
    home: Home,
    recipe: Recipe,
    report: Report = _silent,
    show_progress: bool = False,
    stop_after: int | None = None,
) -> tuple[dict[str, Any], Any]:
    """`train`, returning (metrics, the trained model) for callers that use it next."""
    record, model = train_record(home, recipe, report, show_progress, stop_after)
    return record.to_dict(), model


def train_record(
    home: Home,
    recipe: Recipe,
    report: Report = _silent,
    show_progress: bool = False,
    stop_after: int | None = None,
) -> tuple[RunRecord, Any]:
    """`train_model` with the metrics as their typed record."""
    stage = get_stage(recipe.stage)
    method = get_method(recipe.method)
    dataset = open_dataset(home, str(recipe.data))  # check_recipe refuses a recipe with none
    check_kind(stage, dataset.name, dataset.kind)
    train_split = "train" if dataset.has_splits else None
    if next(dataset.rows(train_split), None) is None:
        raise TllmError(
            f"dataset {dataset.name!r} has no rows to train on"
            + (" in its train split" if train_split else "")
        )
    check_method(stage, recipe.method)
    trainer: Trainer = TrlTrainer(stage) if stage.uses_trl else LoopTrainer(stage)
    check_free(home, recipe)

    recipe.base, hf_dir = resolve_base(home, recipe.base, report)
    config, task = trainer.check_base(hf_dir, recipe)
    start_weights = adapter_to_continue(home, recipe, hf_dir)
    base = Base(hf_dir, config, task, mixed_precision(recipe, config["model_type"]), start_weights)
    fit_context(recipe, config, report)

    world, rank = init_distributed()
    if auto_recipe.applies(recipe):  # only then is the data counted
        n_rows = sum(1 for _ in islice(dataset.rows(train_split), auto_recipe.SMALL_ROWS))
        chosen = auto_recipe.choose(recipe, n_rows, config)
        auto_recipe.apply(recipe, chosen)
        if chosen and rank == 0:  # every process chooses the same; one says so
            report(auto_recipe.describe(chosen, n_rows))
    plan = Plan(
        home,
        recipe,
        stage,
        method,
        dataset,
        base,
        world,
        rank,
        report=report if rank == 0 else _silent,
        show_progress=show_progress and rank == 0,
        stop_after=stop_after,
    )
    trainer.prepare(plan)
    # only now that there is something to learn does the run get a folder
    run = open_run(home, recipe, rank, trainer.latest_checkpoint)
    outcome = trainer.train(plan, run)

    record = _record(plan, run, outcome)
    if rank == 0:
        record.result = str(_save(plan, outcome, record))
        plot_loss(
            outcome.history,
            run.path / "plots" / "loss.png",
            f"{recipe.stage} {recipe.method}: {recipe.name}",
        )
        (run.path / "metrics.json").write_text(
            json.dumps(record.to_dict(), indent=2) + "\n", encoding="utf-8"
        )
    leave_distributed()
    return record, outcome.model


def _record(plan: Plan, run: RunFolder, outcome: Outcome) -> RunRecord:
    """metrics.json: what every run reports, then what its trainer adds."""
    recipe = plan.recipe
    return RunRecord(
        run_id=run.path.name,
        stage=recipe.stage,
        method=recipe.method,
        base=recipe.base,
        data=plan.dataset.name,
        steps=outcome.steps,
        train_loss=outcome.train_loss,
        eval_loss=outcome.eval_loss,
        tokens=int(outcome.tokens),
        seconds=round(outcome.seconds, 3),
        tokens_per_s=outcome.tokens / max(outcome.seconds, 1e-9),
        examples=outcome.examples,
        eval_examples=outcome.eval_examples,
        processes=plan.world,
        extra=dict(outcome.extra),
    )


def _save(plan: Plan, outcome: Outcome, record: RunRecord) -> Path:
    """Write the trained adapter or model with its card (adapters/save.py)."""
    recipe, dataset = plan.recipe, plan.dataset
    metrics = {"train_loss": record.train_loss, "eval_loss": record.eval_loss}
    if "eval_accuracy" in record.extra:  # a classifier's
        metrics["eval_accuracy"] = record.extra["eval_accuracy"]
    card = AdapterCard(
        base=recipe.base,
        base_fingerprint=fingerprint(plan.base.hf_dir),
        stage=recipe.stage,
        method=recipe.method,
        data=dataset.name,
        data_fingerprint=dataset.card.get("fingerprint"),
        steps=record.steps,
        metrics=metrics,
        run_id=record.run_id,
        provenance="local",
        labels=record.labels or None,  # a classifier's classes, in the order of its outputs
        reward=recipe.reward or None,  # rl: the reward model it was trained against
        nulls=frozenset({"data_fingerprint"}),  # recorded even for a dataset without one
    )
    return save_result(
        plan.home, recipe, outcome.model, outcome.tokenizer, card, outcome.weights, plan.report
    )
