"""orpo: odds-ratio preference optimization on `preference` datasets, with TRL's
ORPOTrainer (trl.experimental in TRL 1.x).

One loss both teaches the chosen answers (their language-model loss) and pushes the odds of
the chosen answer above those of the rejected one; there is no reference model at all."""

from __future__ import annotations

from ...methods import METHODS
from .base import Stage, trl_trainer
from .dpo import preference_example

# TRL's ORPO lines its logits up with the input tokens, so virtual tokens prepended to
# them (P-tuning, prompt tuning) break it; prefix tuning adds no positions and works.
_VIRTUAL = "it lines logits up with the input, and this method prepends virtual tokens to them"
STAGE = Stage(
    "orpo",
    ("preference",),
    "causal-lm",
    "odds-ratio preference optimization",
    convert=preference_example,
    trainer=trl_trainer("trl.experimental.orpo", "ORPOTrainer", "ORPOConfig"),
    refused_methods={m.name: _VIRTUAL for m in METHODS.values() if m.prepends_tokens},
)
