"""rm: a reward model on `preference` datasets, with TRL's RewardTrainer.

The base gets a scalar head (sequence classification with one output; decoders score the
last real token) trained so that each chosen answer scores above its rejected one. With a
PEFT method the head is trained whole and saved with the adapter (PEFT's modules_to_save),
so `PeftModel.from_pretrained` on `AutoModelForSequenceClassification(num_labels=1)` gives
the reward model back. The rl stage trains a chat model against it."""

from __future__ import annotations

from .base import Stage, trl_trainer
from .dpo import preference_example

# The task is "classify": a scalar head, on an encoder or on a decoder (trl_trainer loads it).
STAGE = Stage(
    "rm",
    ("preference",),
    "classify",
    "a reward model with a scalar head",
    convert=preference_example,
    trainer=trl_trainer("trl", "RewardTrainer", "RewardConfig"),
)
