"""A run of a TRL stage (dpo, orpo, kto, rm, rl), in the same `runs/<id>/` layout as our own
loop's runs (run.py): config.yaml, log.jsonl, metrics.json, plots/loss.png, checkpoints/.

Why TRL here and our loop for the others: preference and RL losses need a reference model,
paired or unpaired batches, sampling, and per-stage metrics (reward margins, log-odds, KL,
mean reward) that TRL already gets right; the speed levers of our loop matter less than
correctness for these stages.
TRL is a transformers `Trainer`, so the recipe becomes its TrainingArguments, a callback
writes its logs into log.jsonl (and stops it on Ctrl-C, SIGTERM or `stop_after`), its own
checkpoints go into checkpoints/ and `--resume` hands the last one back to it.

The model comes from model.py's rules: the base in fp32 (bf16 products as the recipe's
precision says), the recipe's PEFT method through the family registry; TRL wraps it, so
with an adapter the reference of dpo, kto and rloo is the base with the adapter switched
off. rm loads a scalar head (one label) on the base; rl scores with one (reward.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..errors import RefusedError, TllmError
from ..models.families import METHODS

# What TRL logs that is not a metric of the stage.
_BOOKKEEPING = ("epoch", "grad_norm", "learning_rate", "num_tokens", "train_runtime",
                "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss",
                "step_time")


def train_trl(home, recipe, stage, dataset, report, show_progress: bool = False,
              stop_after: int | None = None) -> tuple[dict, object]:
    """Train `recipe` with the TRL trainer of `stage`; (metrics, trained model)."""
    from .model import mixed_precision, resolve_base
    from .run import _fit_context, _init_distributed, _open_run, _rewrite_log
    from .save import check_free
    from .sharding import trainer_arguments, trainer_weights

    if recipe.method in stage.refused_methods:
        works = [m for m in METHODS if m not in stage.refused_methods]
        raise RefusedError(f"--stage {stage.name} cannot train with --method {recipe.method}: "
                           f"{stage.refused_methods[recipe.method]}; methods that work: {', '.join(works)}")
    check_free(home, recipe)
    recipe.base, hf_dir = resolve_base(home, recipe.base, report)
    config, task = _check_base(hf_dir, recipe, stage)
    bf16 = mixed_precision(recipe, config["model_type"])
    _fit_context(recipe, config, report)
    train_split = "train" if dataset.has_splits else None
    examples = [stage.convert(row) for row in dataset.rows(train_split)]
    eval_examples = [stage.convert(row) for row in dataset.rows("eval")] if dataset.has_splits else []
    if stage.check is not None:
        stage.check(recipe, dataset.name, examples)
    extra = stage.prepare(home, recipe, hf_dir) if stage.prepare is not None else {}
    # Seeded shuffle: kto's trainer reads rows in order (its drift estimate pairs neighbours),
    # and a dataset written good-then-bad would give it one-sided micro-batches.
    import random

    random.Random(recipe.seed).shuffle(examples)
    world, rank = _init_distributed()
    sharded = trainer_arguments(recipe, world)  # fsdp or deepspeed (sharding.py)
    run_dir, checkpoint = _open_run(home, recipe, rank, find_checkpoint=last_checkpoint)
    model, tokenizer, peft_config = _load(hf_dir, config, recipe, task)

    import datasets

    log = _Log(run_dir / "log.jsonl", rank == 0, stop_after, show_progress and rank == 0, recipe.name)
    if checkpoint is not None:  # drop what was logged past the checkpoint
        step = int(checkpoint.name.split("-")[-1])
        log.history = [r for r in _read_log(log.path) if r["step"] <= step]
        if rank == 0:
            _rewrite_log(log.path, log.history)
        report(f"resuming {run_dir.name} from step {step}")
    train_set = datasets.Dataset.from_list(examples)
    eval_set = datasets.Dataset.from_list(eval_examples) if eval_examples else None
    args = training_args(recipe, run_dir / "checkpoints", eval_set is not None, bf16)
    args.update(sharded)
    try:
        trainer = stage.trainer(model, tokenizer, args, train_set, eval_set, peft_config,
                                [log.callback()], **extra)
    except ValueError as error:  # TRL's own checks of the data or the model
        raise TllmError(f"{stage.name}: {error}") from None
    kept = len(trainer.train_dataset)  # TRL drops rows that max_length cuts too far
    if kept == 0:
        if checkpoint is None:  # no half-made run to resume
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)
        raise TllmError(f"every row of dataset {dataset.name!r} ({len(examples)}) is too long for "
                        f"max_length {recipe.max_length} once rendered: nothing to learn; "
                        "raise --max-length")
    if kept < len(examples):
        report(f"{len(examples) - kept} of {len(examples)} rows dropped: too long for "
               f"max_length {recipe.max_length} (see metrics.json)")
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # it prints every log to stdout: log.jsonl has them
    from .loop import Interrupted, _StopSignals

    started = time.monotonic()
    try:
        with _StopSignals(log):
            output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    finally:
        log.close_bar()
    seconds = time.monotonic() - started
    if log._stop:
        raise Interrupted(f"{log._stop}: saved a checkpoint at step {trainer.state.global_step} "
                          f"of {trainer.state.max_steps}; "
                          "run the same command with --resume to continue")
    if eval_set is not None and not recipe.eval_every:
        trainer.evaluate()  # "at the end only"

    last = log.last_train() or log.summary
    evals = [r for r in log.history if "eval_loss" in r]
    metrics = {
        "run_id": run_dir.name, "stage": recipe.stage, "method": recipe.method,
        "base": recipe.base, "data": dataset.name, "steps": trainer.state.global_step,
        "train_loss": last.get("loss", output.training_loss),
        "tokens": int(log.tokens),
        "eval_loss": evals[-1]["eval_loss"] if evals else None,
        # the stage's own measures at the last logging step (rewards/margins, log odds...)
        "stage_metrics": {k: v for k, v in last.items()
                          if k not in ("step", "loss") and k not in _BOOKKEEPING
                          and isinstance(v, (int, float))},
        "seconds": round(seconds, 3), "tokens_per_s": log.tokens / max(seconds, 1e-9),
        "examples": kept, "dropped_too_long": len(examples) - kept,
        "eval_examples": len(eval_examples), "processes": world,
    }
    # Without the autocast wrapper accelerate puts on forward for bf16: what is returned and
    # saved computes as a reloaded adapter does.
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    weights = trainer_weights(trainer)  # sharded: gathered on rank 0
    if rank == 0:
        from .plot import plot_loss
        from .run import _save

        metrics["result"] = str(_save(home, recipe, model, tokenizer, hf_dir, dataset, metrics,
                                      weights))
        plot_loss(log.history, run_dir / "plots" / "loss.png",
                  f"{recipe.stage} {recipe.method}: {recipe.name}")
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics, model


def training_args(recipe, output_dir: Path, has_eval: bool, bf16: bool) -> dict:
    """The TrainingArguments (shared by every TRL config) that the recipe decides; `bf16`:
    mixed precision (model.mixed_precision)."""
    import torch

    on_gpu = torch.cuda.is_available()
    eval_steps = recipe.eval_every if has_eval and recipe.eval_every else None
    return dict(
        output_dir=str(output_dir), seed=recipe.seed, data_seed=recipe.seed,
        learning_rate=recipe.lr, num_train_epochs=recipe.epochs, max_steps=recipe.max_steps or -1,
        per_device_train_batch_size=recipe.batch_size, per_device_eval_batch_size=recipe.batch_size,
        gradient_accumulation_steps=recipe.grad_accum, max_length=recipe.max_length,
        # transformers reads a warm-up below 1 as a fraction of the steps
        warmup_steps=min(recipe.warmup_ratio, 0.999), lr_scheduler_type=recipe.scheduler,
        weight_decay=recipe.weight_decay, **({"optim": "sgd"} if recipe.optimizer == "sgd" else {}),
        max_grad_norm=recipe.max_grad_norm or 0.0,
        logging_steps=recipe.logging_every,
        eval_strategy="steps" if eval_steps else "no", eval_steps=eval_steps,
        save_strategy="steps" if recipe.save_every else "no", save_steps=recipe.save_every or 500,
        # our own progress bar (run._Bar), as in pt and sft, and our own log
        report_to="none", disable_tqdm=True,
        # as in our loop: fp32 weights, bf16 autocast where the hardware is fast at it
        use_cpu=not on_gpu, bf16=bf16, fp16=False, activation_checkpointing=False,
        dataloader_num_workers=0,
    )


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint the Trainer wrote in `folder`, or None."""
    from transformers.trainer_utils import get_last_checkpoint

    if not folder.is_dir():
        return None
    found = get_last_checkpoint(str(folder))
    return Path(found) if found else None


def _check_base(hf_dir: Path, recipe, stage) -> tuple[dict, str]:
    """(config.json, the task to check the method against). A reward model is a scalar head
    on an encoder or on a decoder: a decoder is checked as the causal LM it is."""
    from ..models.families import architecture
    from .model import check_base

    task = stage.task
    if stage.name == "rm":
        from ..models.load_hf import read_config

        model_type = read_config(hf_dir)["model_type"]
        family = architecture(model_type).family
        if family == "encoder-decoder":
            raise TllmError(f"rm puts a scalar head on an encoder or a decoder; {model_type} "
                            "is an encoder-decoder")
        task = "classify" if family == "encoder" else "causal-lm"
        if recipe.method == "qlora":
            raise TllmError("rm with qlora is not supported yet: use --method lora")
    return check_base(hf_dir, recipe.method, task), task


def _load(hf_dir: Path, config: dict, recipe, task: str):
    """(model, tokenizer, PEFT config or None). TRL applies the PEFT config itself, so that
    with an adapter it knows the base (adapter off) is the reference model."""
    import torch

    from ..models.families import peft_config
    from ..models.load_hf import load_hf
    from .model import peft_options

    torch.manual_seed(recipe.seed)
    if recipe.stage == "rm":
        model, tokenizer = _load_scorer(hf_dir)
    else:
        model, tokenizer = load_hf(hf_dir, task, recipe.method, dtype=torch.float32)
    model.config.use_cache = False
    if not getattr(tokenizer, "chat_template", None):
        from ..models.chat_template import DEFAULT_TEMPLATE

        tokenizer.chat_template = DEFAULT_TEMPLATE  # as sft renders it, and inference
    adapter = peft_config(config, recipe.method, task, **peft_options(recipe))
    if adapter is not None and recipe.stage == "rm":
        # A scalar head: PEFT then trains the head whole and saves it with the adapter.
        adapter.task_type = "SEQ_CLS"
    return model, tokenizer, adapter


def _load_scorer(hf_dir: Path):
    """The base with a new one-output sequence-classification head (a checkpoint's own
    classifier, if it has one, has other outputs and is replaced)."""
    import torch
    import transformers

    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        hf_dir, num_labels=1, dtype=torch.float32, local_files_only=True, use_safetensors=True,
        ignore_mismatched_sizes=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_dir, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # The head scores the last real token; the model finds it from the pad id.
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


class _Log:
    """The Trainer's logs as log.jsonl lines (step first), kept for the plot and metrics;
    the progress bar; and where Ctrl-C / SIGTERM (loop._StopSignals) and `stop_after` ask
    the Trainer to save a checkpoint and stop."""

    def __init__(self, path: Path, write: bool, stop_after: int | None, bar: bool, name: str):
        self.path, self.write, self.stop_after = path, write, stop_after
        self.history: list[dict] = []
        self.summary: dict = {}  # the Trainer's closing log (runtime, mean loss...)
        self.tokens = 0.0
        self._stop: str | None = None
        self._bar_wanted, self._name, self._bar = bar, name, None
        self._started = time.monotonic()

    def add(self, step: int, logs: dict) -> None:
        numbers = {k: v for k, v in logs.items() if isinstance(v, (int, float))}
        self.tokens = numbers.get("num_tokens", self.tokens)
        if "train_runtime" in numbers:
            self.summary = numbers
            return
        if not ("loss" in numbers or "eval_loss" in numbers):
            return
        record = {"step": step, **numbers}
        self.history.append(record)
        if self.write:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def last_train(self) -> dict:
        return next((r for r in reversed(self.history) if "loss" in r), {})

    def open_bar(self, total: int, step: int) -> None:
        from .run import _Bar

        if self._bar_wanted and self._bar is None:
            self._bar = _Bar(True, total, self._name).__enter__()
            self.update_bar(step)

    def update_bar(self, step: int) -> None:
        if self._bar is not None:
            from types import SimpleNamespace

            self._bar.update(SimpleNamespace(step=step, tokens=self.tokens,
                                             seconds=time.monotonic() - self._started,
                                             train_loss=self.last_train().get("loss")))

    def close_bar(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def callback(self):
        from transformers import TrainerCallback

        log = self

        class Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                log.open_bar(state.max_steps, state.global_step)

            def on_log(self, args, state, control, logs=None, **kwargs):
                log.add(state.global_step, logs or {})

            def on_step_end(self, args, state, control, **kwargs):
                log.update_bar(state.global_step)
                if log.stop_after is not None and state.global_step >= log.stop_after:
                    log._stop = log._stop or "stopped"
                if log._stop:  # save where we are, then stop
                    control.should_save = True
                    control.should_training_stop = True
                elif state.global_step >= state.max_steps:
                    # The Trainer saves a last checkpoint; the adapter saved next is the result.
                    control.should_save = False
                return control

        return Callback()
