"""Training in our own loop (pt, sft, seq2seq, classify): the stage encodes the dataset's
rows into token examples with the base's tokenizer, MicroBatches turns them into
low-padding micro-batches, and Loop (loop.py) trains with its own checkpoints.

Rows that truncation leaves with nothing to learn are counted and reported, and a dataset
left empty by them is refused before the run folder opens, never trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import TllmError
from .batches import MicroBatches
from .inputs.encode import Stats, label_names
from .loop import Loop, latest_checkpoint, total_steps
from .model import check_base, load_for_training, load_tokenizer
from .processes import to_accelerator
from .progress_bar import ProgressBar
from .recipe import Recipe
from .run_folder import RunFolder
from .sharding import gathered_weights, is_sharded
from .stages import Stage
from .trainer import Outcome, Plan, Report


class LoopTrainer:
    """A `trainer.Trainer` for the stages that encode their rows (`Stage.encode`)."""

    def __init__(self, stage: Stage) -> None:
        if stage.encode is None:
            raise TllmError(f"stage {stage.name} does not train in our own loop")
        self.stage = stage
        self.encode = stage.encode
        self.tokenizer: Any = None
        self.labels: list[str] | None = None  # a classifier's classes
        self.examples: list[dict[str, Any]] = []
        self.eval_examples: list[dict[str, Any]] = []
        self.stats, self.eval_stats = Stats(), Stats()

    def check_base(self, hf_dir: Path, recipe: Recipe) -> tuple[dict[str, Any], str]:
        return check_base(hf_dir, recipe.method, self.stage.task), self.stage.task

    def latest_checkpoint(self, folder: Path) -> Path | None:
        return latest_checkpoint(folder)

    def prepare(self, plan: Plan) -> None:
        recipe, dataset = plan.recipe, plan.dataset
        self.tokenizer = load_tokenizer(plan.base.hf_dir)
        if self.stage.task == "classify":  # the classes of every split, so eval ids match train ids
            self.labels = label_names(dataset.rows())
        train_split = "train" if dataset.has_splits else None
        self.examples = self.encode(
            dataset.rows(train_split), self.tokenizer, recipe.max_length, self.stats, self.labels
        )
        check_examples(dataset.name, recipe, self.stats, self.examples, plan.report)
        if dataset.has_splits:
            self.eval_examples = self.encode(
                dataset.rows("eval"),
                self.tokenizer,
                recipe.max_length,
                self.eval_stats,
                self.labels,
            )

    def train(self, plan: Plan, run: RunFolder) -> Outcome:
        recipe, base = plan.recipe, plan.base
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id
        train_batches = self._batches(recipe, self.examples, pad_id or 0, shuffle=True)
        eval_batches = (
            self._batches(recipe, self.eval_examples, pad_id or 0, shuffle=False)
            if self.eval_examples
            else None
        )
        steps = total_steps(recipe, len(train_batches), plan.world)

        model, tokenizer = load_for_training(
            base.hf_dir, base.config, recipe, base.task, self.labels, base.start_weights
        )
        to_accelerator(model)
        file = run.path / "progress.json" if plan.rank == 0 else None
        with ProgressBar(plan.show_progress, steps, str(recipe.name), file) as bar:
            loop = Loop(
                model,
                recipe,
                train_batches,
                eval_batches,
                steps,
                run.checkpoints,
                log=run.log.append,
                on_step=bar.update,
                task=base.task,
                bf16=base.bf16,
            )
            if run.checkpoint is not None:
                loop.resume(run.checkpoint)
                run.log.rewrite(loop.progress.history)  # drop lines past the checkpoint
                plan.report(f"resuming {run.path.name} at step {loop.progress.step} of {steps}")
            bar.update(loop.progress)
            progress = loop.run(stop_after=plan.stop_after)

        # --sharding fsdp: every process sends its shards to rank 0 (None when not sharded)
        weights = gathered_weights(
            loop.model, plan.rank, trainable_only=not plan.method.saves_full_model
        )
        classes = (
            {"eval_accuracy": progress.eval_accuracy, "labels": self.labels} if self.labels else {}
        )
        return Outcome(
            model=loop.model,
            tokenizer=tokenizer,
            history=progress.history,
            steps=progress.step,
            train_loss=progress.train_loss,
            eval_loss=progress.eval_loss,
            tokens=progress.tokens,
            seconds=progress.seconds,
            examples=len(self.examples),
            eval_examples=len(self.eval_examples),
            weights=weights,
            extra={
                **classes,
                "label_tokens": progress.label_tokens,
                "packing": recipe.packing,
                "sharded": is_sharded(loop.model),
                "precision": "bf16" if loop.bf16 else "fp32",
                "preprocessing": {"train": self.stats.as_dict(), "eval": self.eval_stats.as_dict()},
            },
        )

    @staticmethod
    def _batches(
        recipe: Recipe, examples: list[dict[str, Any]], pad_id: int, shuffle: bool
    ) -> MicroBatches:
        return MicroBatches(
            examples,
            recipe.batch_size,
            recipe.seed,
            recipe.packing,
            pad_id,
            recipe.max_length,
            shuffle=shuffle,
        )


def check_examples(
    name: str, recipe: Recipe, stats: Stats, examples: list[dict[str, Any]], report: Report
) -> None:
    """Refuse a dataset that encoding left empty; report the rows dropped and cut."""
    dropped = stats.dropped_no_labels
    if not examples:
        if dropped:
            raise TllmError(
                f"every row of dataset {name!r} ({dropped}) lost all its assistant tokens when "
                f"cut to max_length {recipe.max_length}: nothing to learn; raise --max-length"
            )
        raise TllmError(f"dataset {name!r} gave no training examples")
    if dropped:
        report(
            f"{dropped} of {dropped + stats.kept} rows dropped: no assistant token left "
            f"within max_length {recipe.max_length} (see metrics.json)"
        )
    if stats.truncated:
        report(f"{stats.truncated} rows cut to max_length {recipe.max_length}")
