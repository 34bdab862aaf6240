"""One training run, from a checked recipe to a saved adapter, in `runs/<id>/`:

    config.yaml     the resolved recipe (a recipe file: `tllm train runs/<id>/config.yaml`)
    log.jsonl       one line per logging step (step, loss, lr, tokens_per_s, epoch) and
                    per evaluation (step, eval_loss)
    metrics.json    final train/eval loss, steps, tokens, time, pre-processing counts; its
                    presence marks the run finished
    plots/loss.png  the loss curve
    checkpoints/    step-N/ folders (checkpoint.py), for --resume

pt, sft, seq2seq and classify train in our own loop (loop.py); dpo, orpo, kto, rm and rl run
a TRL trainer in the same layout (trl_run.py: its log lines carry TRL's names, its
checkpoints are the Trainer's).
Everything that can be refused from the recipe, the dataset card and the base's config.json
is refused before torch is imported; rows that tokenization leaves with nothing to learn are
reported, and a dataset left empty by them is refused, never trained on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from ..data.store import open_dataset
from ..errors import TllmError
from ..home import new_run_id
from .recipe import Recipe, save_recipe
from .stages import check_kind, get_stage

# Fields a resumed run may change: they decide what is reported, not what is learned.
FREE_ON_RESUME = ("resume", "overwrite", "eval_every", "save_every", "logging_every")


def train(home, recipe: Recipe, report=lambda message: None, show_progress: bool = False,
          stop_after: int | None = None) -> dict:
    """Train as `recipe` says; return the metrics (also in runs/<id>/metrics.json).
    `stop_after` (tests) interrupts the run after that step, as Ctrl-C would."""
    return train_model(home, recipe, report, show_progress, stop_after)[0]


def train_model(home, recipe: Recipe, report=lambda message: None, show_progress: bool = False,
                stop_after: int | None = None) -> tuple[dict, object]:
    """`train`, returning (metrics, the trained model) for callers that use it next."""
    from .model import check_base, mixed_precision, resolve_base
    from .save import check_free

    stage = get_stage(recipe.stage)
    dataset = open_dataset(home, recipe.data)
    check_kind(stage, dataset.name, dataset.kind)
    train_split = "train" if dataset.has_splits else None
    if next(dataset.rows(train_split), None) is None:
        raise TllmError(f"dataset {dataset.name!r} has no rows to train on"
                        + (" in its train split" if train_split else ""))
    if stage.uses_trl:  # dpo, orpo, kto, rm, rl: a TRL trainer in the same run folder
        from .trl_run import train_trl

        return train_trl(home, recipe, stage, dataset, report, show_progress, stop_after)
    check_free(home, recipe)
    recipe.base, hf_dir = resolve_base(home, recipe.base, report)
    config = check_base(hf_dir, recipe.method, stage.task)
    bf16 = mixed_precision(recipe, config["model_type"])
    _fit_context(recipe, config, report)
    world, rank = _init_distributed()
    if rank != 0:  # one process speaks for all
        report = lambda message: None  # noqa: E731
    tokenizer = _tokenizer(hf_dir)
    from ..data.preprocess import Stats

    stats, eval_stats = Stats(), Stats()
    labels = None
    if stage.task == "classify":  # the classes of every split, so eval ids match train ids
        from ..data.preprocess import label_names

        labels = label_names(dataset.rows())
    examples = stage.encode(dataset.rows(train_split), tokenizer, recipe.max_length, stats, labels)
    _check_examples(dataset.name, recipe, stats, examples, report)
    eval_examples = (stage.encode(dataset.rows("eval"), tokenizer, recipe.max_length, eval_stats,
                                  labels) if dataset.has_splits else [])
    run_dir, checkpoint = _open_run(home, recipe, rank)  # only once there is something to learn

    from .batches import MicroBatches
    from .loop import Loop, total_steps
    from .model import load_for_training
    from .sharding import gathered_weights, is_sharded

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_batches = MicroBatches(examples, recipe.batch_size, recipe.seed, recipe.packing,
                                 pad_id or 0, recipe.max_length)
    eval_batches = (MicroBatches(eval_examples, recipe.batch_size, recipe.seed, recipe.packing,
                                 pad_id or 0, recipe.max_length, shuffle=False)
                    if eval_examples else None)
    steps = total_steps(recipe, len(train_batches), world)

    model, tokenizer = load_for_training(hf_dir, config, recipe, stage.task, labels)
    _to_accelerator(model)
    log_path = run_dir / "log.jsonl"
    with _Bar(show_progress and rank == 0, steps, recipe.name) as bar:
        loop = Loop(model, recipe, train_batches, eval_batches, steps, run_dir / "checkpoints",
                    log=lambda record: _append(log_path, record), on_step=bar.update,
                    task=stage.task, bf16=bf16)
        if checkpoint is not None:
            loop.resume(checkpoint)
            _rewrite_log(log_path, loop.progress.history)  # drop lines past the checkpoint
            report(f"resuming {run_dir.name} at step {loop.progress.step} of {steps}")
        bar.update(loop.progress)
        progress = loop.run(stop_after=stop_after)

    metrics = {
        "run_id": run_dir.name, "stage": recipe.stage, "method": recipe.method,
        "base": recipe.base, "data": dataset.name, "steps": progress.step,
        "train_loss": progress.train_loss, "eval_loss": progress.eval_loss,
        **({"eval_accuracy": progress.eval_accuracy, "labels": labels} if labels else {}),
        "tokens": progress.tokens, "label_tokens": progress.label_tokens,
        "seconds": round(progress.seconds, 3),
        "tokens_per_s": progress.tokens / max(progress.seconds, 1e-9),
        "examples": len(examples), "eval_examples": len(eval_examples),
        "packing": recipe.packing, "processes": world, "sharded": is_sharded(loop.model),
        "precision": "bf16" if loop.bf16 else "fp32",
        "preprocessing": {"train": stats.as_dict(), "eval": eval_stats.as_dict()},
    }
    # --sharding fsdp: every process sends its shards to rank 0 (None when not sharded)
    weights = gathered_weights(loop.model, rank, trainable_only=recipe.method != "full")
    if rank == 0:
        metrics["result"] = str(_save(home, recipe, loop.model, tokenizer, hf_dir, dataset,
                                      metrics, weights))
        from .plot import plot_loss

        plot_loss(progress.history, run_dir / "plots" / "loss.png",
                  f"{recipe.stage} {recipe.method}: {recipe.name}")
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics, loop.model


CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "seq_length")


def _fit_context(recipe: Recipe, config: dict, report) -> None:
    """Cap max_length at the positions the base has (less the virtual tokens of the prompt
    methods): longer examples would index past its position table."""
    limit = next((int(config[k]) for k in CONTEXT_KEYS if config.get(k)), None)
    if limit is None:
        return
    if recipe.method in ("prefix", "ptuning", "prompt"):
        limit -= recipe.num_virtual_tokens
    if recipe.max_length > limit:
        report(f"max_length {recipe.max_length} is more than {config['model_type']} "
               f"can see at once: using {limit}")
        recipe.max_length = limit


def _check_examples(name: str, recipe: Recipe, stats, examples: list, report) -> None:
    dropped = stats.dropped_no_labels
    if not examples:
        if dropped:
            raise TllmError(
                f"every row of dataset {name!r} ({dropped}) lost all its assistant tokens when "
                f"cut to max_length {recipe.max_length}: nothing to learn; raise --max-length")
        raise TllmError(f"dataset {name!r} gave no training examples")
    if dropped:
        report(f"{dropped} of {dropped + stats.kept} rows dropped: no assistant token left "
               f"within max_length {recipe.max_length} (see metrics.json)")
    if stats.truncated:
        report(f"{stats.truncated} rows cut to max_length {recipe.max_length}")


def _save(home, recipe, model, tokenizer, hf_dir: Path, dataset, metrics: dict,
          weights: dict | None = None) -> Path:
    from ..models.fingerprint import fingerprint
    from .save import save_result

    card = {"base": recipe.base, "base_fingerprint": fingerprint(hf_dir),
            "stage": recipe.stage, "method": recipe.method, "data": dataset.name,
            "data_fingerprint": dataset.card.get("fingerprint"), "steps": metrics["steps"],
            "metrics": {k: metrics[k] for k in ("train_loss", "eval_loss", "eval_accuracy")
                        if k in metrics},
            "run_id": metrics["run_id"], "provenance": "local"}
    if metrics.get("labels"):  # a classifier's classes, in the order of its outputs
        card["labels"] = metrics["labels"]
    if recipe.reward:  # rl: the reward model it was trained against
        card["reward"] = recipe.reward
    return save_result(home, recipe, model, tokenizer, card, weights)


# ------------------------------------------------------------------------- run folders


def runs_dir(home) -> Path:
    return home.path / "runs"


def _open_run(home, recipe: Recipe, rank: int, find_checkpoint=None) -> tuple[Path, Path | None]:
    """(run folder, checkpoint to resume from or None): a new run, or with --resume the
    latest unfinished run of the same name. `find_checkpoint(folder)` finds the newest
    checkpoint (default: our loop's; TRL runs have the Trainer's)."""
    from .loop import latest_checkpoint

    find_checkpoint = find_checkpoint or latest_checkpoint
    if recipe.resume:
        run_dir = _run_to_resume(home, recipe, find_checkpoint)
        return run_dir, find_checkpoint(run_dir / "checkpoints")
    run_id = _broadcast(new_run_id(runs_dir(home), recipe.name) if rank == 0 else None)
    run_dir = runs_dir(home) / run_id
    if rank == 0:
        run_dir.mkdir(parents=True)
        save_recipe(recipe, run_dir / "config.yaml")
    return run_dir, None


def _run_to_resume(home, recipe: Recipe, find_checkpoint) -> Path:
    candidates = []
    for run_dir in sorted(runs_dir(home).glob("*/config.yaml")):
        saved = yaml.safe_load(run_dir.read_text(encoding="utf-8")) or {}
        if saved.get("name") == recipe.name and not (run_dir.parent / "metrics.json").exists():
            if find_checkpoint(run_dir.parent / "checkpoints") is not None:
                candidates.append((run_dir.parent, saved))
    if not candidates:
        raise TllmError(f"no interrupted run of {recipe.name!r} with a checkpoint to resume "
                        f"in {runs_dir(home)}; run without --resume to start one")
    run_dir, saved = candidates[-1]
    now, defaults = recipe.to_dict(), Recipe().to_dict()
    # A key the saved recipe lacks was added since that run started: it ran with the default.
    changed = [f"{key}: {saved.get(key, defaults[key])!r} -> {now[key]!r}" for key in now
               if key not in FREE_ON_RESUME and saved.get(key, defaults[key]) != now[key]]
    if changed:
        raise TllmError(f"run {run_dir.name} was started with a different recipe ({'; '.join(changed)}); "
                        "resume with the same settings, or start a new run without --resume")
    return run_dir


def _append(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _rewrite_log(path: Path, history: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")


def _tokenizer(hf_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(hf_dir, local_files_only=True)


# ------------------------------------------------------------------------- processes


def _init_distributed() -> tuple[int, int]:
    """(world size, rank): under torchrun, join the process group (gloo on CPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 1, 0
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_world_size(), dist.get_rank()


def _to_accelerator(model) -> None:
    """On a GPU machine, this process's GPU (torchrun's LOCAL_RANK); else stay on the CPU."""
    import torch

    if torch.cuda.is_available():
        model.to(torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))))


def _broadcast(value):
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


class _Bar:
    """A rich progress bar on stderr with loss and tokens/s (or nothing when off)."""

    def __init__(self, enabled: bool, total: int, name: str):
        self.enabled, self.total, self.name = enabled, total, name
        self.progress = self.task = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeRemainingColumn)

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                                     TextColumn("{task.fields[speed]} tok/s"), TimeRemainingColumn(),
                                     console=Console(stderr=True))
            self.progress.start()
            self.task = self.progress.add_task(f"training {self.name}", total=self.total,
                                               loss="-", speed="-")
        return self

    def update(self, p) -> None:
        if self.progress is None:
            return
        speed = f"{p.tokens / p.seconds:,.0f}" if p.seconds else "-"
        loss = f"{p.train_loss:.4f}" if p.train_loss is not None else "-"
        self.progress.update(self.task, completed=p.step, loss=loss, speed=speed)

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
