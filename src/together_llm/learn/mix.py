"""The rows a candidate trains on: what is new, a replay of what was learned before, and
the base's own answers to everyday questions.

A row is a conversation and the answer it teaches: a memory's question alone, or the
conversation a person corrected, with the answer they wanted.

Training on the new rows alone, starting from the current version, overwrites what that
version knew (catastrophic forgetting: the new facts' gradients pull the same LoRA weights
the old facts live in). Replaying a sample of the earlier rows beside the new ones keeps
them, as experience replay does in continual learning; the base's everyday answers keep
how it answers everything else. A round that must unlearn (a memory was forgotten) trains
from the base on every remaining memory instead: the candidate never sees the forgotten
rows, so nothing of them is left.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..data.feedback import Correction
from .memories import Memory
from .scoring import Turns, conversation

# Earlier rows replayed: as many as the new rows, and never fewer than this.
REPLAY_AT_LEAST = 24


@dataclass(frozen=True)
class Row:
    asked: str | Turns  # a question, or a whole conversation ending with the user's turn
    answer: str

    def chat(self, system_prompt: str) -> dict:
        """The row as a chat dataset row, in the conversation the question is asked in."""
        messages = conversation(system_prompt, self.asked)
        return {"messages": [*messages, {"role": "assistant", "content": self.answer}]}


@dataclass(frozen=True)
class Mix:
    new: list[Row]
    replay: list[Row]
    general: list[Row]

    @property
    def rows(self) -> list[Row]:
        return self.new + self.replay + self.general


def rows_of(memories: Sequence[Memory]) -> list[Row]:
    return [Row(probe.question, memory.answer) for memory in memories for probe in memory.train]


def corrected(corrections: Sequence[Correction]) -> list[Row]:
    return [Row(c.prompt, c.wanted) for c in corrections]


def build_mix(
    new: Sequence[Memory],
    earlier: Sequence[Memory],
    general: Sequence[tuple[str, str]],
    replay: bool,
    seed: int,
    new_corrections: Sequence[Correction] = (),
    earlier_corrections: Sequence[Correction] = (),
    new_data: Sequence[Row] = (),
    earlier_data: Sequence[Row] = (),
) -> Mix:
    """The mix for a round that learns `new` after `earlier` (`replay` False: the new rows
    alone, plain sequential fine-tuning). Earlier corrections, one row each, are all
    replayed beside the earlier memories' share; rows of datasets taught before
    (taught_data.py) get a share as large as the memories'."""
    new_rows = rows_of(new) + corrected(new_corrections) + list(new_data)
    if not replay:
        return Mix(new_rows, [], [])
    rng = random.Random(seed)
    budget = max(len(new_rows), REPLAY_AT_LEAST)
    # Round-robin over the earlier memories, each memory's rows shuffled: every memory keeps
    # a share of the replay however many rows the others have.
    queues = [rng.sample(rows_of([m]), len(m.train)) for m in earlier]
    replayed: list[Row] = []
    while len(replayed) < budget and any(queues):
        for queue in queues:
            if queue and len(replayed) < budget:
                replayed.append(queue.pop())
    data = rng.sample(list(earlier_data), min(len(earlier_data), budget))
    return Mix(
        new_rows,
        replayed + corrected(earlier_corrections) + data,
        [Row(question, answer) for question, answer in general],
    )
