"""Defaults that teach: a recipe's settings fitted to a small dataset and its base.

The plain defaults (3 epochs, learning rate 2e-4, rank 8 on the family's attention
projections) suit thousands of rows. On a person's few dozen facts they do not teach: 12
facts in 36 rows trained that way took 27 steps to a loss of 2.46 and answered 1 of 12
held-out questions. A fact in a small dataset is seen a handful of times, so it needs
more passes, a larger step and more of the network to hold it.

So on a small dataset (under SMALL_ROWS rows) of an sft or pt run with LoRA, every setting
the person did not give is chosen here for the data's size and the base's width, and the
choice is reported with its reasons. What the person gave (flags, the recipe file) always
wins; `--no-auto` keeps the plain defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..methods import get_method
from ..methods.peft_configs import ALL_LINEAR
from ..models.families import WIDTH_KEYS
from .recipe import Recipe

SMALL_ROWS = 5000
STAGES = ("sft", "pt")
# Passes over the data: enough that the smallest datasets see each row about 10 times,
# never fewer than the plain 3.
EXAMPLES_SEEN = 400
MOST_EPOCHS = 10


@dataclass(frozen=True)
class Choice:
    field: str
    value: Any
    why: str


def applies(recipe: Recipe) -> bool:
    """Whether the recipe is of the kind this chooses for (auto on, an sft or pt run of the
    LoRA family), whatever its data's size."""
    return recipe.auto and recipe.stage in STAGES and get_method(recipe.method).peft_type == "LORA"


def choose(recipe: Recipe, n_rows: int, config: dict) -> list[Choice]:
    """The settings to change for `n_rows` rows on a base of `config` (config.json), each
    with its reason; none when the run is not a small LoRA sft/pt run or auto is off."""
    if not applies(recipe) or n_rows >= SMALL_ROWS:
        return []
    given = set(recipe.fixed)
    choices: list[Choice] = []

    def offer(field: str, value: Any, why: str) -> None:
        if field not in given and getattr(recipe, field) != value:
            choices.append(Choice(field, value, why))

    if "max_steps" not in given:
        epochs = float(min(MOST_EPOCHS, max(3, round(EXAMPLES_SEEN / n_rows))))
        offer("epochs", epochs, f"{n_rows} rows: each is seen {epochs:g} times")
    offer("lr", *step(config))
    offer("rank", 16, "room for many facts")
    offer("alpha", 32.0, "alpha / rank = 2, as at rank 8")
    offer("target_modules", [ALL_LINEAR], "every linear layer learns, the MLPs too")
    offer("warmup_ratio", 0.1, "a gentle start at the larger learning rate")
    return choices


def step(config: dict) -> tuple[float, str]:
    """The learning rate for a small dataset on a base of `config`, and why.

    An unknown width gets the careful step. 2e-3 on the 576-wide bundled model taught its
    facts but, depending on the seed and on bf16 or fp32, bent everyday answers toward them
    ("the capital of Japan" became "Jamaica, Chile"); 1e-3 over the same epochs taught as
    many facts and kept them, on every seed tried. A run going on from an adapter takes the
    same step."""
    width = next((int(config[k]) for k in WIDTH_KEYS if isinstance(config.get(k), int)), 0)
    lr = 5e-4 if not width or width > 2560 else 1e-3
    return lr, f"few steps on a base {width} wide" if width else "few steps, unknown width"


def apply(recipe: Recipe, choices: list[Choice]) -> None:
    for choice in choices:
        setattr(recipe, choice.field, choice.value)


def describe(choices: list[Choice], n_rows: int) -> str:
    """One line for the report: what was chosen and why."""
    parts = [f"{c.field.replace('_', '-')} {_shown(c.value)} ({c.why})" for c in choices]
    return (
        f"settings for a small dataset ({n_rows} rows): "
        + "; ".join(parts)
        + ". A flag wins; --no-auto keeps the plain defaults."
    )


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
