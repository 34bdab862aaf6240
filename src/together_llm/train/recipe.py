"""The training recipe: every setting of `tllm train`, typed and documented field by field.

A recipe comes from a YAML file (`tllm train recipe.yaml`), from flags, or both: flags
override the file. Each field of `Recipe` is also a flag (`max_steps` -> `--max-steps`), with
its `help` as the flag's help, so the file format and the command line cannot drift apart.
Every value is checked here (type, choices, bounds; unknown keys refused) before anything
heavy is imported, so a typo costs milliseconds, not a model load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import TllmError, check_name
from ..methods import LORA, METHODS, get_method
from ..settings_kit import from_mapping, set_field, setting
from .sharding import check_sharding
from .stages import STAGE_NAMES

SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
INITS = ("pretrained", "random")
PRECISIONS = ("auto", "bf16", "fp32")
RL_METHODS = ("grpo", "rloo")
SHARDINGS = ("none", "fsdp")
OPTIMIZERS = ("adamw", "sgd")


@dataclass
class Recipe:
    """One training run. Fields left at None are resolved at run time (see their help)."""

    # what to train, on what
    data: str | None = setting(
        None, "dataset to train on (a name from `tllm data list`)", short="-d"
    )
    stage: str = setting(
        "sft",
        "pt: continued pretraining on text; sft: chat fine-tuning (loss on "
        "the assistant's turns only); dpo, orpo: preference pairs; kto: thumbs "
        "up/down (feedback data); rm: a reward model on preference pairs; rl: "
        "online RL of a chat model against a reward model (--reward)",
        choices=STAGE_NAMES,
    )
    method: str = setting(
        LORA.name,
        "full, lora, qlora (4-bit base), prefix, ptuning or prompt",
        choices=tuple(METHODS),
    )
    name: str | None = setting(
        None, "name of the adapter (or, for full, the model) to create", short="-n"
    )
    base: str | None = setting(
        None, "base model (a name from `tllm models list`); default: assistant.yaml's model"
    )
    init: str = setting(
        "pretrained",
        "pt only: random starts from the base's config with random weights",
        choices=INITS,
    )
    # how long
    epochs: float = setting(
        3.0, "passes over the training data (ignored when max_steps is set)", above=0
    )
    max_steps: int | None = setting(None, "stop after this many optimizer steps", low=1)
    # optimization
    lr: float = setting(2e-4, "peak learning rate", above=0)
    optimizer: str = setting(
        "adamw",
        "adamw; or sgd, plain gradient steps (what a federated peer "
        "takes when the server runs Adam: tllm together --strategy fedadam)",
        choices=OPTIMIZERS,
    )
    batch_size: int = setting(
        4, "examples per micro-batch (one step learns from batch_size x grad_accum)", low=1
    )
    grad_accum: int = setting(1, "micro-batches per optimizer step", low=1)
    max_length: int = setting(
        1024,
        "longest example (pt: the block size), in tokens; longer ones are "
        "cut; also the most tokens one forward pass holds when packing",
        low=8,
    )
    packing: bool = setting(
        True,
        "group a micro-batch's examples by length so that padding stays "
        "under an eighth (off: pad all to the longest)",
    )
    seed: int = setting(42, "random seed: data order, adapter initialisation, dropout")
    warmup_ratio: float = setting(
        0.0, "fraction of the steps spent warming the learning rate up", low=0, high=1
    )
    scheduler: str = setting("cosine", "learning-rate schedule after warm-up", choices=SCHEDULERS)
    weight_decay: float = setting(0.0, "AdamW weight decay", low=0)
    max_grad_norm: float = setting(1.0, "clip the gradient norm to this (0 = no clipping)", low=0)
    precision: str = setting(
        "auto",
        "matrix products in bf16 (mixed precision: weights, gradients "
        "and optimizer state stay fp32) or fp32; auto: bf16 where the hardware "
        "multiplies it fast (CPUs with AVX512-BF16 or AMX, GPUs with bf16)",
        choices=PRECISIONS,
    )
    # several processes (torchrun, accelerate launch; docs/distributed.md)
    sharding: str = setting(
        "none",
        "with several processes: none = data-parallel, each process "
        "holds the whole model (DDP); fsdp = fully sharded data-parallel, "
        "weights, gradients and optimizer state split across processes (torch "
        "FSDP2, the ZeRO-3 idea; methods full and lora)",
        choices=SHARDINGS,
    )
    deepspeed: str | None = setting(
        None,
        "dpo, orpo, kto, rm, rl only: a DeepSpeed JSON "
        "config (e.g. recipes/distributed/zero3.json) for the "
        "TRL trainer; needs the deepspeed package",
    )
    # reporting and checkpoints
    eval_every: int = setting(
        0, "evaluate on the eval split every N steps (0 = at the end only)", low=0
    )
    save_every: int = setting(
        100, "write a checkpoint every N steps (0 = only on interruption)", low=0
    )
    logging_every: int = setting(5, "log loss, learning rate and tokens/s every N steps", low=1)
    # PEFT options
    rank: int = setting(8, "LoRA rank: the width of the low-rank update", low=1)
    alpha: float = setting(16.0, "LoRA alpha (the update is scaled by alpha / rank)", above=0)
    dropout: float = setting(0.05, "LoRA dropout", low=0, high=1)
    target_modules: list = setting(
        [],
        "LoRA target modules, comma-separated, or all-linear (every linear layer but the "
        "output head); empty: the family's own",
    )
    dora: bool = setting(False, "LoRA: weight-decomposed updates (DoRA)")
    num_virtual_tokens: int = setting(8, "prefix, ptuning, prompt: number of virtual tokens", low=1)
    # rl
    reward: str | None = setting(
        None,
        "rl only: the reward model to train against: an rm "
        "adapter of this home (tllm train --stage rm) on the same "
        "base, or a registered model with a scalar head",
    )
    rl_method: str = setting(
        "grpo",
        "rl only: grpo (each completion against its prompt's group "
        "mean and spread) or rloo (against the mean of the prompt's other "
        "completions, with a KL penalty to the base)",
        choices=RL_METHODS,
    )
    num_generations: int = setting(
        4,
        "rl only: completions sampled per prompt; batch_size (which "
        "counts completions) x grad_accum must be a multiple of it",
        low=2,
    )
    max_new_tokens: int = setting(32, "rl only: longest completion sampled, in tokens", low=1)
    start_from: str | None = setting(
        None,
        "LoRA methods: an adapter of this home to go on training (its weights are where "
        "training starts; its rank, alpha and target modules are kept); tllm improve "
        "continues the assistant's adapter so",
    )
    # settings that teach a small dataset (auto_recipe.py)
    auto: bool = setting(
        False,
        "on a small dataset (under 5,000 rows) of an sft or pt LoRA run, fit epochs, "
        "learning rate, rank, alpha, target modules and warm-up to its size and the base, "
        "and print the choice; a setting given explicitly wins (tllm train: on unless "
        "--no-auto)",
    )
    fixed: list = setting([], "the settings given explicitly, which auto leaves", cli=False)
    # what to do with earlier results
    overwrite: bool = setting(False, "replace an existing adapter or model of the same name")
    resume: bool = setting(
        False, "continue the last interrupted run of this name from its checkpoint"
    )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_recipe(path: str | Path | None = None, overrides: dict | None = None) -> Recipe:
    """The recipe of YAML file `path` (if any) with `overrides` (flag values; None = not
    given) applied on top, checked field by field and as a whole."""
    recipe, given, auto_given = Recipe(), set(), False
    if path is not None:
        try:
            mapping = _read_yaml(Path(path))
            recipe = from_mapping(Recipe, mapping, what="recipe key")
        except TllmError as error:
            raise TllmError(f"{path}: {error}") from None
        # a saved recipe (a run's config.yaml) says which settings were given; a file a
        # person wrote gives its keys
        given |= set(recipe.fixed) if "fixed" in mapping else set(mapping)
        auto_given = "auto" in mapping
    for key, value in (overrides or {}).items():
        if value is not None:
            set_field(recipe, key, value, what="recipe key")
            given.add(key)
            auto_given |= key == "auto"
    if not auto_given:
        recipe.auto = True  # what a person asks for gets the settings that teach
    recipe.fixed = sorted(given - {"auto", "fixed"})
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
    if recipe.start_from is not None:
        check_name(recipe.start_from, "adapter name")
        if get_method(recipe.method).peft_type != "LORA":
            raise TllmError(
                f"--start-from continues a LoRA adapter; method {recipe.method} trains "
                "no LoRA weights"
            )
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
