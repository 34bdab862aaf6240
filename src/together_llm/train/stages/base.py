"""What a training stage is: the dataset kinds it accepts, the model task it trains, and the
function that turns canonical rows into token examples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class Stage:
    name: str
    kinds: tuple[str, ...]  # dataset kinds it trains on
    task: str  # the model task (models.families.TASKS) it loads the base for
    summary: str
    # encode(rows, tokenizer, max_length, stats) -> [{"input_ids", "labels"}, ...];
    # None for a stage that is not implemented yet.
    encode: Optional[Callable] = None
    random_init: bool = False  # whether --init random makes sense (pretraining from scratch)

    @property
    def implemented(self) -> bool:
        return self.encode is not None
