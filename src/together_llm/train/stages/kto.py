"""kto: alignment from thumbs up / thumbs down (`feedback` datasets), with TRL's KTOTrainer.

Unlike dpo, rows need not come in pairs: each is one answer marked desirable or not. The
loss weighs both sides against an estimate of the policy's drift from the reference (the
base with the adapter off), so a dataset needs rows of both labels, and micro-batches of at
least two (the drift is estimated from mismatched pairs within a micro-batch)."""

from __future__ import annotations

from ...errors import TllmError
from .base import Stage, trl_trainer
from .dpo import assistant


def feedback_example(row: dict) -> dict:
    """A canonical feedback row in TRL's conversational unpaired-preference format."""
    return {
        "prompt": row["prompt"],
        "completion": assistant(row["completion"]),
        "label": bool(row["label"]),
    }


def check(recipe, dataset_name: str, examples: list[dict]) -> None:
    """Refuse, before loading the model, what KTO cannot learn from."""
    if recipe.batch_size < 2:
        raise TllmError(
            "kto estimates its reference drift from pairs within a micro-batch: "
            "use --batch-size 2 or more"
        )
    good = sum(1 for e in examples if e["label"])
    if good == 0 or good == len(examples):
        side, missing = (
            ("desirable", "undesirable (label false)")
            if good
            else ("undesirable", "desirable (label true)")
        )
        raise TllmError(
            f"kto learns from both good and bad answers, and every row of dataset "
            f"{dataset_name!r} is {side}: add some {missing} rows"
        )


STAGE = Stage(
    "kto",
    ("feedback",),
    "causal-lm",
    "thumbs up/down alignment (KTO)",
    convert=feedback_example,
    trainer=trl_trainer("trl", "KTOTrainer", "KTOConfig"),
    check=check,
)
