"""Training with a TRL trainer (dpo, orpo, kto, rm, rl), in the same `runs/<id>/` layout as
our own loop's runs: its log lines carry TRL's names, its checkpoints are the Trainer's.

Why TRL here and our loop for the others: preference and RL losses need a reference model,
paired or unpaired batches, sampling, and per-stage metrics (reward margins, log-odds, KL,
mean reward) that TRL already gets right; the speed levers of our loop matter less than
correctness for these stages.
TRL is a transformers `Trainer`, so the recipe becomes its TrainingArguments, a callback
writes its logs into log.jsonl (and stops it on Ctrl-C, SIGTERM or `stop_after`: trl_log.py),
its own checkpoints go into checkpoints/ and `--resume` hands the last one back to it.

The model comes from model.py's rules: the base in fp32 (bf16 products as the recipe's
precision says), the recipe's PEFT method through the family registry; TRL wraps it, so
with an adapter the reference of dpo, kto and rloo is the base with the adapter switched
off. rm loads a scalar head (one label) on the base; rl scores with one (reward.py).
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path
from typing import Any

from ..errors import TllmError
from ..methods import get_method
from ..models.chat_template import DEFAULT_TEMPLATE
from ..models.families import architecture, peft_config
from ..models.load_hf import load_hf, read_config
from .model import check_base, continue_adapter
from .recipe import Recipe
from .run_folder import RunFolder
from .sharding import trainer_arguments, trainer_weights
from .stages import Stage
from .stopping import Interrupted, StopSignals
from .trainer import Outcome, Plan
from .trl_log import TrainerLog

# What TRL logs that is not a metric of the stage.
_BOOKKEEPING = (
    "epoch",
    "grad_norm",
    "learning_rate",
    "num_tokens",
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "total_flos",
    "train_loss",
    "step_time",
)


class TrlTrainer:
    """A `trainer.Trainer` for the stages that build a TRL trainer (`Stage.trainer`)."""

    def __init__(self, stage: Stage) -> None:
        if stage.trainer is None or stage.convert is None:
            raise TllmError(f"stage {stage.name} does not train with TRL")
        self.stage = stage
        self.build, self.convert = stage.trainer, stage.convert
        self.examples: list[dict[str, Any]] = []
        self.eval_examples: list[dict[str, Any]] = []
        self.prepared: dict[str, Any] = {}  # what stage.prepare adds (rl: the reward model)
        self.sharded: dict[str, Any] = {}  # TrainingArguments for DeepSpeed or FSDP

    def check_base(self, hf_dir: Path, recipe: Recipe) -> tuple[dict[str, Any], str]:
        return check_stage_base(hf_dir, recipe, self.stage)

    def latest_checkpoint(self, folder: Path) -> Path | None:
        return last_checkpoint(folder)

    def prepare(self, plan: Plan) -> None:
        recipe, dataset, stage = plan.recipe, plan.dataset, self.stage
        train_split = "train" if dataset.has_splits else None
        self.examples = [self.convert(row) for row in dataset.rows(train_split)]
        if dataset.has_splits:
            self.eval_examples = [self.convert(row) for row in dataset.rows("eval")]
        if stage.check is not None:
            stage.check(recipe, dataset.name, self.examples)
        if stage.prepare is not None:
            self.prepared = stage.prepare(plan.home, recipe, plan.base.hf_dir)
        # Seeded shuffle: kto's trainer reads rows in order (its drift estimate pairs
        # neighbours), and a dataset written good-then-bad would give it one-sided
        # micro-batches.
        random.Random(recipe.seed).shuffle(self.examples)
        self.sharded = trainer_arguments(recipe, plan.world)  # fsdp or deepspeed (sharding.py)

    def train(self, plan: Plan, run: RunFolder) -> Outcome:
        recipe, base = plan.recipe, plan.base
        model, tokenizer, adapter = load_model(base.hf_dir, base.config, recipe, base.task)
        if base.start_weights is not None and adapter is not None:
            model, adapter = continue_adapter(model, adapter, base.start_weights), None

        import datasets

        file = run.path / "progress.json" if plan.rank == 0 else None
        log = TrainerLog(run.log, plan.stop_after, plan.show_progress, str(recipe.name), file)
        if run.checkpoint is not None:  # drop what was logged past the checkpoint
            step = int(run.checkpoint.name.split("-")[-1])
            log.history = [r for r in run.log.read() if r["step"] <= step]
            run.log.rewrite(log.history)
            plan.report(f"resuming {run.path.name} from step {step}")
        train_set = datasets.Dataset.from_list(self.examples)
        eval_set = datasets.Dataset.from_list(self.eval_examples) if self.eval_examples else None
        args = training_args(recipe, run.checkpoints, eval_set is not None, base.bf16)
        args.update(self.sharded)
        try:
            callbacks = [log.callback()]
            trainer = self.build(
                model, tokenizer, args, train_set, eval_set, adapter, callbacks, **self.prepared
            )
        except ValueError as error:  # TRL's own checks of the data or the model
            raise TllmError(f"{self.stage.name}: {error}") from None
        kept = self._kept(plan, run, len(trainer.train_dataset))

        from transformers import PrinterCallback

        trainer.remove_callback(
            PrinterCallback
        )  # it prints every log to stdout: log.jsonl has them
        started = time.monotonic()
        try:
            with StopSignals(log):
                resume = str(run.checkpoint) if run.checkpoint else None
                output = trainer.train(resume_from_checkpoint=resume)
        finally:
            log.close_bar()
        seconds = time.monotonic() - started
        if log.stop_reason:
            raise Interrupted(
                f"{log.stop_reason}: saved a checkpoint at step {trainer.state.global_step} "
                f"of {trainer.state.max_steps}; "
                "run the same command with --resume to continue"
            )
        if eval_set is not None and not recipe.eval_every:
            trainer.evaluate()  # "at the end only"

        last = log.last_train() or log.summary
        evals = [r for r in log.history if "eval_loss" in r]
        return Outcome(
            # Without the autocast wrapper accelerate puts on forward for bf16: what is
            # returned and saved computes as a reloaded adapter does.
            model=trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False),
            tokenizer=tokenizer,
            history=log.history,
            steps=trainer.state.global_step,
            train_loss=last.get("loss", output.training_loss),
            eval_loss=evals[-1]["eval_loss"] if evals else None,
            tokens=log.tokens,
            seconds=seconds,
            examples=kept,
            eval_examples=len(self.eval_examples),
            weights=trainer_weights(trainer),  # sharded: gathered on rank 0
            extra={
                # the stage's own measures at the last logging step (rewards/margins, log odds)
                "stage_metrics": {
                    k: v
                    for k, v in last.items()
                    if k not in ("step", "loss")
                    and k not in _BOOKKEEPING
                    and isinstance(v, (int, float))
                },
                "dropped_too_long": len(self.examples) - kept,
            },
        )

    def _kept(self, plan: Plan, run: RunFolder, kept: int) -> int:
        """The rows TRL kept (it drops those max_length cuts too far), refused when none."""
        total, max_length = len(self.examples), plan.recipe.max_length
        if kept == 0:
            if run.checkpoint is None:  # no half-made run to resume
                shutil.rmtree(run.path, ignore_errors=True)
            raise TllmError(
                f"every row of dataset {plan.dataset.name!r} ({total}) is too long for "
                f"max_length {max_length} once rendered: nothing to learn; "
                "raise --max-length"
            )
        if kept < total:
            plan.report(
                f"{total - kept} of {total} rows dropped: too long for "
                f"max_length {max_length} (see metrics.json)"
            )
        return kept


def training_args(recipe: Recipe, output_dir: Path, has_eval: bool, bf16: bool) -> dict[str, Any]:
    """The TrainingArguments (shared by every TRL config) that the recipe decides; `bf16`:
    mixed precision (model.mixed_precision)."""
    import torch

    on_gpu = torch.cuda.is_available()
    eval_steps = recipe.eval_every if has_eval and recipe.eval_every else None
    return dict(
        output_dir=str(output_dir),
        seed=recipe.seed,
        data_seed=recipe.seed,
        learning_rate=recipe.lr,
        num_train_epochs=recipe.epochs,
        max_steps=recipe.max_steps or -1,
        per_device_train_batch_size=recipe.batch_size,
        per_device_eval_batch_size=recipe.batch_size,
        gradient_accumulation_steps=recipe.grad_accum,
        max_length=recipe.max_length,
        # transformers reads a warm-up below 1 as a fraction of the steps
        warmup_steps=min(recipe.warmup_ratio, 0.999),
        lr_scheduler_type=recipe.scheduler,
        weight_decay=recipe.weight_decay,
        **({"optim": "sgd"} if recipe.optimizer == "sgd" else {}),
        max_grad_norm=recipe.max_grad_norm or 0.0,
        logging_steps=recipe.logging_every,
        eval_strategy="steps" if eval_steps else "no",
        eval_steps=eval_steps,
        save_strategy="steps" if recipe.save_every else "no",
        save_steps=recipe.save_every or 500,
        # our own progress bar (progress_bar.py), as in pt and sft, and our own log
        report_to="none",
        disable_tqdm=True,
        # as in our loop: fp32 weights, bf16 autocast where the hardware is fast at it
        use_cpu=not on_gpu,
        bf16=bf16,
        fp16=False,
        activation_checkpointing=False,
        dataloader_num_workers=0,
    )


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint the Trainer wrote in `folder`, or None."""
    from transformers.trainer_utils import get_last_checkpoint

    if not folder.is_dir():
        return None
    found = get_last_checkpoint(str(folder))
    return Path(found) if found else None


def check_stage_base(hf_dir: Path, recipe: Recipe, stage: Stage) -> tuple[dict[str, Any], str]:
    """(config.json, the task to check the method against). A reward model is a scalar head
    on an encoder or on a decoder: a decoder is checked as the causal LM it is."""

    task = stage.task
    if stage.name == "rm":
        model_type = read_config(hf_dir)["model_type"]
        family = architecture(model_type).family
        if family == "encoder-decoder":
            raise TllmError(
                f"rm puts a scalar head on an encoder or a decoder; {model_type} "
                "is an encoder-decoder"
            )
        task = "classify" if family == "encoder" else "causal-lm"
        if get_method(recipe.method).quantizes:
            raise TllmError(f"rm with {recipe.method} is not supported yet: use --method lora")
    return check_base(hf_dir, recipe.method, task), task


def load_model(hf_dir: Path, config: dict[str, Any], recipe: Recipe, task: str) -> tuple:
    """(model, tokenizer, PEFT config or None). TRL applies the PEFT config itself, so that
    with an adapter it knows the base (adapter off) is the reference model."""
    import torch

    torch.manual_seed(recipe.seed)
    method = get_method(recipe.method)
    if recipe.stage == "rm":
        model, tokenizer = load_scorer(hf_dir)
    else:
        model, tokenizer = load_hf(hf_dir, task, recipe.method, dtype=torch.float32)
    model.config.use_cache = False
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_TEMPLATE  # as sft renders it, and inference
    adapter = peft_config(config, recipe.method, task, **method.options(recipe))
    if adapter is not None and recipe.stage == "rm":
        # A scalar head: PEFT then trains the head whole and saves it with the adapter.
        adapter.task_type = "SEQ_CLS"
    return model, tokenizer, adapter


def load_scorer(hf_dir: Path) -> tuple:
    """The base with a new one-output sequence-classification head (a checkpoint's own
    classifier, if it has one, has other outputs and is replaced)."""
    import torch
    import transformers

    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        hf_dir,
        num_labels=1,
        dtype=torch.float32,
        local_files_only=True,
        use_safetensors=True,
        ignore_mismatched_sizes=True,
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_dir, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # The head scores the last real token; the model finds it from the pad id.
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
