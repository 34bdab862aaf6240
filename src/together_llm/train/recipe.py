"""The training recipe: every setting of `tllm train`, typed and documented field by field.

A recipe comes from a YAML file (`tllm train recipe.yaml`), from flags, or both: flags
override the file. Each field of `Recipe` is also a flag (`max_steps` -> `--max-steps`), with
its `help` as the flag's help, so the file format and the command line cannot drift apart.
Every value is checked here (type, choices, bounds; unknown keys refused) before anything
heavy is imported, so a typo costs milliseconds, not a model load.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import TllmError, check_name
from ..home import coerce
from ..methods import LORA, METHODS, get_method
from .sharding import check_sharding
from .stages import STAGE_NAMES

SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
INITS = ("pretrained", "random")
PRECISIONS = ("auto", "bf16", "fp32")
RL_METHODS = ("grpo", "rloo")
SHARDINGS = ("none", "fsdp")
OPTIMIZERS = ("adamw", "sgd")


def _f(
    default,
    help: str,
    choices: tuple | None = None,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
):
    """A recipe field that documents and bounds itself (`above`: strictly greater than)."""
    meta = {"help": help, "choices": choices, "low": low, "high": high, "above": above}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Recipe:
    """One training run. Fields left at None are resolved at run time (see their help)."""

    # what to train, on what
    data: str | None = _f(None, "dataset to train on (a name from `tllm data list`)")
    stage: str = _f(
        "sft",
        "pt: continued pretraining on text; sft: chat fine-tuning (loss on "
        "the assistant's turns only); dpo, orpo: preference pairs; kto: thumbs "
        "up/down (feedback data); rm: a reward model on preference pairs; rl: "
        "online RL of a chat model against a reward model (--reward)",
        choices=STAGE_NAMES,
    )
    method: str = _f(
        LORA.name,
        "full, lora, qlora (4-bit base), prefix, ptuning or prompt",
        choices=tuple(METHODS),
    )
    name: str | None = _f(None, "name of the adapter (or, for full, the model) to create")
    base: str | None = _f(
        None, "base model (a name from `tllm models list`); default: assistant.yaml's model"
    )
    init: str = _f(
        "pretrained",
        "pt only: random starts from the base's config with random weights",
        choices=INITS,
    )
    # how long
    epochs: float = _f(
        3.0, "passes over the training data (ignored when max_steps is set)", above=0
    )
    max_steps: int | None = _f(None, "stop after this many optimizer steps", low=1)
    # optimization
    lr: float = _f(2e-4, "peak learning rate", above=0)
    optimizer: str = _f(
        "adamw",
        "adamw; or sgd, plain gradient steps (what a federated peer "
        "takes when the server runs Adam: tllm together --strategy fedadam)",
        choices=OPTIMIZERS,
    )
    batch_size: int = _f(
        4, "examples per micro-batch (one step learns from batch_size x grad_accum)", low=1
    )
    grad_accum: int = _f(1, "micro-batches per optimizer step", low=1)
    max_length: int = _f(
        1024,
        "longest example (pt: the block size), in tokens; longer ones are "
        "cut; also the most tokens one forward pass holds when packing",
        low=8,
    )
    packing: bool = _f(
        True,
        "group a micro-batch's examples by length so that padding stays "
        "under an eighth (off: pad all to the longest)",
    )
    seed: int = _f(42, "random seed: data order, adapter initialisation, dropout")
    warmup_ratio: float = _f(
        0.0, "fraction of the steps spent warming the learning rate up", low=0, high=1
    )
    scheduler: str = _f("cosine", "learning-rate schedule after warm-up", choices=SCHEDULERS)
    weight_decay: float = _f(0.0, "AdamW weight decay", low=0)
    max_grad_norm: float = _f(1.0, "clip the gradient norm to this (0 = no clipping)", low=0)
    precision: str = _f(
        "auto",
        "matrix products in bf16 (mixed precision: weights, gradients "
        "and optimizer state stay fp32) or fp32; auto: bf16 where the hardware "
        "multiplies it fast (CPUs with AVX512-BF16 or AMX, GPUs with bf16)",
        choices=PRECISIONS,
    )
    # several processes (torchrun, accelerate launch; docs/distributed.md)
    sharding: str = _f(
        "none",
        "with several processes: none = data-parallel, each process "
        "holds the whole model (DDP); fsdp = fully sharded data-parallel, "
        "weights, gradients and optimizer state split across processes (torch "
        "FSDP2, the ZeRO-3 idea; methods full and lora)",
        choices=SHARDINGS,
    )
    deepspeed: str | None = _f(
        None,
        "dpo, orpo, kto, rm, rl only: a DeepSpeed JSON "
        "config (e.g. recipes/distributed/zero3.json) for the "
        "TRL trainer; needs the deepspeed package",
    )
    # reporting and checkpoints
    eval_every: int = _f(0, "evaluate on the eval split every N steps (0 = at the end only)", low=0)
    save_every: int = _f(100, "write a checkpoint every N steps (0 = only on interruption)", low=0)
    logging_every: int = _f(5, "log loss, learning rate and tokens/s every N steps", low=1)
    # PEFT options
    rank: int = _f(8, "LoRA rank: the width of the low-rank update", low=1)
    alpha: float = _f(16.0, "LoRA alpha (the update is scaled by alpha / rank)", above=0)
    dropout: float = _f(0.05, "LoRA dropout", low=0, high=1)
    target_modules: list = _f([], "LoRA target modules, comma-separated; empty: the family's own")
    dora: bool = _f(False, "LoRA: weight-decomposed updates (DoRA)")
    num_virtual_tokens: int = _f(8, "prefix, ptuning, prompt: number of virtual tokens", low=1)
    # rl
    reward: str | None = _f(
        None,
        "rl only: the reward model to train against: an rm "
        "adapter of this home (tllm train --stage rm) on the same "
        "base, or a registered model with a scalar head",
    )
    rl_method: str = _f(
        "grpo",
        "rl only: grpo (each completion against its prompt's group "
        "mean and spread) or rloo (against the mean of the prompt's other "
        "completions, with a KL penalty to the base)",
        choices=RL_METHODS,
    )
    num_generations: int = _f(
        4,
        "rl only: completions sampled per prompt; batch_size (which "
        "counts completions) x grad_accum must be a multiple of it",
        low=2,
    )
    max_new_tokens: int = _f(32, "rl only: longest completion sampled, in tokens", low=1)
    # what to do with earlier results
    overwrite: bool = _f(False, "replace an existing adapter or model of the same name")
    resume: bool = _f(False, "continue the last interrupted run of this name from its checkpoint")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def recipe_fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(Recipe))


def _hints() -> dict:
    return typing.get_type_hints(Recipe)


def set_field(recipe: Recipe, key: str, raw) -> None:
    """Set field `key` from a YAML value or a flag's string, checking type and bounds."""
    known = {f.name: f for f in recipe_fields()}
    if key not in known:
        raise TllmError(f"unknown recipe key {key!r}; keys: {', '.join(known)}")
    meta = known[key].metadata
    value = coerce(key, raw, _hints()[key], meta)
    above = meta.get("above")
    if above is not None and value is not None and not value > above:
        raise TllmError(f"invalid value {raw!r} for {key}: must be greater than {above:g}")
    setattr(recipe, key, value)


def load_recipe(path: str | Path | None = None, overrides: dict | None = None) -> Recipe:
    """The recipe of YAML file `path` (if any) with `overrides` (flag values; None = not
    given) applied on top, checked field by field and as a whole."""
    recipe = Recipe()
    if path is not None:
        for key, value in _read_yaml(Path(path)).items():
            try:
                set_field(recipe, str(key), value)
            except TllmError as error:
                raise TllmError(f"{path}: {error}") from None
    for key, value in (overrides or {}).items():
        if value is not None:
            set_field(recipe, key, value)
    check_recipe(recipe)
    return recipe


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise TllmError(f"no such recipe file: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise TllmError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise TllmError(f"{path} must hold a mapping of recipe keys (data, stage, method, ...)")
    return data


def check_recipe(recipe: Recipe) -> None:
    """What no single field can check: required fields and fields that depend on each other."""
    if not recipe.data:
        raise TllmError("no dataset: give --data NAME (or `data:` in the recipe)")
    check_name(recipe.data, "dataset name")
    if not recipe.name:
        raise TllmError("no name for the result: give --name NAME (or `name:` in the recipe)")
    check_name(recipe.name, "adapter name")
    if recipe.base is not None:
        check_name(recipe.base, "model name")
    if recipe.init == "random" and recipe.stage != "pt":
        raise TllmError(f"--init random only makes sense for --stage pt, not {recipe.stage}")
    if recipe.init == "random" and not get_method(recipe.method).from_scratch:
        raise TllmError(
            f"--init random trains a model from scratch: use --method full (or lora), "
            f"not {recipe.method}"
        )
    if recipe.stage == "rl":
        if not recipe.reward:
            raise TllmError(
                "--stage rl trains against a reward model: give --reward NAME (an rm "
                "adapter from `tllm train --stage rm`, or a model with a scalar head)"
            )
        check_name(recipe.reward, "reward model name")
        if recipe.batch_size * recipe.grad_accum % recipe.num_generations:
            raise TllmError(
                f"rl scores each prompt's {recipe.num_generations} completions "
                f"together: batch_size x grad_accum ({recipe.batch_size} x "
                f"{recipe.grad_accum}) must be a multiple of --num-generations"
            )
    elif recipe.reward is not None:
        raise TllmError(f"--reward is for --stage rl, not --stage {recipe.stage}")

    check_sharding(recipe)


def save_recipe(recipe: Recipe, path: Path) -> None:
    """Write the resolved recipe as YAML: a recipe file `tllm train` reads back as it is."""

    data = recipe.to_dict()
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
