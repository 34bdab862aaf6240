"""dpo: direct preference optimization on `preference` datasets, with TRL's DPOTrainer.

The policy learns to prefer each row's chosen answer over its rejected one relative to a
frozen reference: with a PEFT adapter, the base itself with the adapter switched off (no
second copy of the model); with `full`, a copy TRL makes. Rows go to TRL in its
conversational format, so it renders them with the model's own chat template."""

from __future__ import annotations

from .base import Stage, trl_trainer


def assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def preference_example(row: dict) -> dict:
    """A canonical preference row in TRL's conversational preference format."""
    return {
        "prompt": row["prompt"],
        "chosen": assistant(row["chosen"]),
        "rejected": assistant(row["rejected"]),
    }


STAGE = Stage(
    "dpo",
    ("preference",),
    "causal-lm",
    "direct preference optimization",
    convert=preference_example,
    trainer=trl_trainer("trl", "DPOTrainer", "DPOConfig"),
)
