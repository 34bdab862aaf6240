"""Our training loop (pt, sft, seq2seq, classify): short, explicit, resumable. What it
minimises comes from the stage's task (objectives.py).

Why our own loop rather than transformers' `Trainer`: the speed levers are micro-batches
split into length groups with little padding (batches.py), each its own forward pass, and
logits computed only where a token is learned; neither fits the Trainer's one-forward-per-
batch `compute_loss` without overriding the very parts that make it the Trainer. And three
things the issue asks for are simpler and more certain written out:
- the loss of a step is the sum over every learned token of its forward passes (and of every
  process) divided by their count, so a grouped step, a padded step, 2 x grad_accum in one
  process and 2 processes x grad_accum all learn exactly the same thing;
- the data position of a step follows from the step number (batches.py), so a checkpoint is
  the weights being trained, the optimizer, the scheduler and the random states, and a
  resumed run continues bit for bit where it stopped;
- Ctrl-C and SIGTERM finish the current step and save a checkpoint before exiting
  (stopping.py).
Distributed: under torchrun the model is wrapped in DistributedDataParallel (or sharded with
FSDP: --sharding fsdp, sharding.py), each process takes its share of a step's micro-batches,
and the counts are all-reduced; only rank 0 writes files. The loop assumes nothing about the
number of processes.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..methods import get_method
from .batches import MicroBatches
from .checkpoint import checkpoints, load_checkpoint, save_checkpoint
from .objectives import OBJECTIVES
from .processes import current_world
from .sharding import (
    forward_passes,
    gathered_optimizer_state,
    gathered_weights,
    gradient_sync,
    wrap,
)
from .stopping import Interrupted, StopSignals


@dataclass
class Progress:
    """What the loop has done so far; saved in every checkpoint."""

    step: int = 0
    tokens: int = 0  # non-padding tokens trained on
    label_tokens: int = 0
    seconds: float = 0.0  # training time, evaluations excluded
    train_loss: float | None = None  # mean loss of the last logging window
    eval_loss: float | None = None
    eval_accuracy: float | None = None  # classify only
    history: list = field(default_factory=list)  # the log records, for the plot


def can_keep_logits(model, method: str) -> bool:
    """Whether the model takes `logits_to_keep` (most transformers 5 decoders do) and its
    logits line up with its inputs (not so under prompt-learning methods)."""

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return (
        not get_method(method).prompt_learning
        and "logits_to_keep" in inspect.signature(base.forward).parameters
    )


class Loop:
    def __init__(
        self,
        model,
        recipe,
        train: MicroBatches,
        evaluate: MicroBatches | None,
        total_steps: int,
        checkpoint_dir: Path,
        log=lambda record: None,
        on_step=lambda progress: None,
        task: str = "causal-lm",
        bf16: bool = False,
        regularizer=None,
    ):
        import torch

        self.recipe = recipe
        self.train_batches, self.eval_batches = train, evaluate
        self.total_steps = total_steps
        self.checkpoint_dir = checkpoint_dir
        self.log, self.on_step = log, on_step
        self.world, self.rank = current_world()
        self.model = model  # the unwrapped model: what is saved
        # DDP around the model, or FSDP sharding it in place (sharding.py): before the
        # optimizer, which must hold the shards
        self.forward_model = wrap(model, recipe.sharding, self.world)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = (
            torch.optim.SGD(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
            if recipe.optimizer == "sgd"
            else torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
        )
        self.scheduler = _scheduler(self.optimizer, recipe, total_steps)
        self.objective = OBJECTIVES[task]
        self.learned_only = task == "causal-lm" and can_keep_logits(model, recipe.method)
        self.bf16 = bf16  # bf16 autocast (model.mixed_precision)
        # regularizer(model) -> a scalar added to every step's loss (FedProx's proximal term,
        # together/local.py); the logged loss stays the task's own
        self.regularizer = regularizer
        self.progress = Progress()
        self.stop_reason: str | None = None  # set by a signal (stopping.StopSignals)

    @property
    def micro_per_step(self) -> int:
        return self.recipe.grad_accum * self.world

    # ------------------------------------------------------------------ running

    def resume(self, path: Path) -> None:
        import torch

        state = load_checkpoint(path, self.model, self.optimizer, self.scheduler)
        self.progress = Progress(**state["progress"])
        ranks = state.get("torch_rng_by_rank") or []
        if len(ranks) == self.world:  # each process draws its own dropout masks on
            torch.set_rng_state(ranks[self.rank])

    def run(self, stop_after: int | None = None) -> Progress:
        """Train to `total_steps`. `stop_after` (tests) acts like a Ctrl-C after that step."""
        with StopSignals(self):
            window = {"loss": 0.0, "labels": 0, "tokens": 0, "seconds": 0.0}
            while self.progress.step < self.total_steps:
                lr = self.scheduler.get_last_lr()[0]  # the rate this step trains with
                loss, labels, tokens, seconds = self._step()
                p = self.progress
                p.step += 1
                p.tokens += tokens
                p.label_tokens += labels
                p.seconds += seconds
                for key, value in zip(
                    ("loss", "labels", "tokens", "seconds"), (loss, labels, tokens, seconds)
                ):
                    window[key] += value
                last = p.step == self.total_steps
                if p.step % self.recipe.logging_every == 0 or last:
                    p.train_loss = window["loss"] / max(window["labels"], 1)
                    self._record(
                        {
                            "step": p.step,
                            "loss": p.train_loss,
                            "lr": lr,
                            "tokens_per_s": window["tokens"] / max(window["seconds"], 1e-9),
                            "epoch": p.step * self.micro_per_step / len(self.train_batches),
                        }
                    )
                    window = dict.fromkeys(window, 0)
                    window["loss"] = 0.0
                if self.eval_batches and (
                    last or self.recipe.eval_every and p.step % self.recipe.eval_every == 0
                ):
                    found = self.evaluate()
                    p.eval_loss, p.eval_accuracy = found["eval_loss"], found.get("eval_accuracy")
                    self._record({"step": p.step, **found})
                self.on_step(p)
                if stop_after is not None and p.step >= stop_after and not last:
                    self.stop_reason = "stopped by request"
                if self._agreed_stop() and not last:
                    path = self.save()
                    raise Interrupted(
                        f"{self.stop_reason}: saved a checkpoint at step {p.step} of "
                        f"{self.total_steps} ({path}); run the same command with "
                        "--resume to continue"
                    )
                if self.recipe.save_every and p.step % self.recipe.save_every == 0 and not last:
                    self.save()
        return self.progress

    def _agreed_stop(self) -> str | None:
        """The stop request, agreed by every process after the same step: a signal reaches
        each at its own moment, and a sharded checkpoint needs them all at once."""
        if self.world > 1:
            import torch

            asked = _all_reduce(torch.tensor([1.0 if self.stop_reason else 0.0]), self.world)
            if asked[0] > 0 and not self.stop_reason:
                self.stop_reason = "stopped with another process"
        return self.stop_reason

    def _step(self) -> tuple[float, int, int, float]:
        """One optimizer step: (summed loss, learned tokens, real tokens, seconds), all
        processes together."""
        import torch

        start = time.perf_counter()
        first = self.progress.step * self.micro_per_step
        mine = range(first + self.rank, first + self.micro_per_step, self.world)
        batches = [self._to_device(b) for m in mine for b in self.train_batches.batch(m)]
        count, tokens = self.objective.count, self.objective.tokens
        counts = torch.tensor(
            [sum(count(b) for b in batches), sum(tokens(b) for b in batches)], dtype=torch.float64
        )
        counts = _all_reduce(counts, self.world)
        labels = max(int(counts[0]), 1)
        total = torch.zeros((), dtype=torch.float64)
        passes = forward_passes(self.forward_model, batches)  # sharded: as many everywhere
        for i, (batch, weight) in enumerate(passes):
            # Processes may make different numbers of forward passes (length groups): only the
            # last backward of each synchronizes the gradients, once per step everywhere.
            last = i == len(passes) - 1
            with gradient_sync(self.forward_model, last or self.world == 1):
                with self._autocast():
                    loss = self.objective.loss(self.forward_model, batch, self.learned_only)
                    loss = loss * weight  # 0: a pass that only keeps shards in step
                # DDP averages gradients over processes: scale back up to a sum, then divide by
                # every process's learned tokens, so the step's loss is one mean over all.
                (loss * (self.world / labels)).backward()
            total += loss.detach().double()
        if self.regularizer is not None:
            self.regularizer(self.model).backward()
        if self.recipe.max_grad_norm > 0:
            params = [p for p in self.model.parameters() if p.requires_grad]
            torch.nn.utils.clip_grad_norm_(params, self.recipe.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        summed = float(_all_reduce(total, self.world))
        return summed, int(counts[0]), int(counts[1]), time.perf_counter() - start

    def evaluate(self) -> dict:
        """{"eval_loss": mean loss per learned unit} over the whole eval split, and
        "eval_accuracy" for a classifier (every process does its share)."""
        import torch

        evaluated = self.eval_batches
        assert evaluated is not None, "a loop without eval batches has nothing to evaluate"
        self.model.eval()
        sums = torch.zeros(3, dtype=torch.float64)  # loss, learned units, right answers
        with torch.no_grad(), self._autocast():
            mine = [
                b for m in range(self.rank, len(evaluated), self.world) for b in evaluated.batch(m)
            ]
            spare = None if mine else evaluated.batch(0)  # sharded: a pass of weight 0
            for batch, weight in forward_passes(self.model, mine, spare):
                batch = self._to_device(batch)
                if self.objective.evaluate is not None:
                    loss, correct = self.objective.evaluate(self.model, batch)
                    sums[2] += correct * weight
                else:
                    loss = self.objective.loss(self.model, batch, self.learned_only)
                sums[0] += loss.double() * weight
                sums[1] += self.objective.count(batch) * weight
        self.model.train()
        sums = _all_reduce(sums, self.world)
        found = {"eval_loss": float(sums[0] / max(float(sums[1]), 1.0))}
        if self.objective.evaluate is not None:
            found["eval_accuracy"] = float(sums[2] / max(float(sums[1]), 1.0))
        return found

    def _autocast(self):
        """bf16 matrix products when the recipe's precision asks for them (model.mixed_precision)."""
        import torch

        device = next(self.model.parameters()).device.type
        return torch.autocast(device, dtype=torch.bfloat16, enabled=self.bf16)

    def _to_device(self, batch: dict) -> dict:
        device = next(self.model.parameters()).device
        return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}

    def save(self) -> Path | None:
        """Write a checkpoint (rank 0) and return its folder."""

        # sharded: every process sends its shards to rank 0 (None when not sharded)
        weights = gathered_weights(self.model, self.rank)
        optimizer_state = gathered_optimizer_state(self.model, self.optimizer, self.rank)
        rng = _gather_rng_states(self.world)
        if self.rank != 0:
            return None
        extra = {
            "progress": asdict(self.progress),
            "data_position": self.progress.step * self.micro_per_step,
            "torch_rng_by_rank": rng,
        }
        return save_checkpoint(
            self.checkpoint_dir,
            self.progress.step,
            self.model,
            self.optimizer,
            self.scheduler,
            extra,
            weights,
            optimizer_state,
        )

    def _record(self, record: dict) -> None:
        self.progress.history.append(record)
        if self.rank == 0:
            self.log(record)


def latest_checkpoint(folder: Path) -> Path | None:
    found = checkpoints(folder)
    return found[-1] if found else None


def total_steps(recipe, micro_batches: int, world: int = 1) -> int:
    if recipe.max_steps:
        return recipe.max_steps
    return max(1, math.ceil(recipe.epochs * micro_batches / (recipe.grad_accum * world)))


def _scheduler(optimizer, recipe, total: int):
    from transformers import get_scheduler

    warmup = math.ceil(recipe.warmup_ratio * total)
    return get_scheduler(
        recipe.scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=total
    )


def _gather_rng_states(world: int) -> list:
    """Every process's torch random state, by rank (dropout masks differ per process)."""
    import torch

    state = torch.get_rng_state()
    if world == 1:
        return [state]
    import torch.distributed as dist

    states = [None] * world
    dist.all_gather_object(states, state)
    return states


def _all_reduce(tensor, world: int):
    """Sum `tensor` over all processes (NCCL only reduces GPU tensors)."""
    if world > 1:
        import torch.distributed as dist

        on_gpu = dist.get_backend() == "nccl"
        tensor = tensor.cuda() if on_gpu else tensor
        dist.all_reduce(tensor)
        tensor = tensor.cpu()
    return tensor
