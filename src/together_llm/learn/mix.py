"""The rows a candidate trains on: what is new, a replay of what was learned before, and
the base's own answers to everyday questions.

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

from .memories import Memory

# Earlier rows replayed: as many as the new rows, and never fewer than this.
REPLAY_AT_LEAST = 24


@dataclass(frozen=True)
class Mix:
    new: list[tuple[str, str]]  # (question, answer)
    replay: list[tuple[str, str]]
    general: list[tuple[str, str]]

    @property
    def rows(self) -> list[tuple[str, str]]:
        return self.new + self.replay + self.general


def rows_of(memories: Sequence[Memory]) -> list[tuple[str, str]]:
    return [(probe.question, memory.answer) for memory in memories for probe in memory.train]


def build_mix(
    new: Sequence[Memory],
    earlier: Sequence[Memory],
    general: Sequence[tuple[str, str]],
    replay: bool,
    seed: int,
) -> Mix:
    """The mix for a round that learns `new` after `earlier` (`replay` False: the new rows
    alone, plain sequential fine-tuning)."""
    new_rows = rows_of(new)
    if not replay:
        return Mix(new_rows, [], [])
    rng = random.Random(seed)
    budget = max(len(new_rows), REPLAY_AT_LEAST)
    # Round-robin over the earlier memories, each memory's rows shuffled: every memory keeps
    # a share of the replay however many rows the others have.
    queues = [rng.sample(rows_of([m]), len(m.train)) for m in earlier]
    replayed: list[tuple[str, str]] = []
    while len(replayed) < budget and any(queues):
        for queue in queues:
            if queue and len(replayed) < budget:
                replayed.append(queue.pop())
    return Mix(new_rows, replayed, list(general))


def chat_row(question: str, answer: str, system_prompt: str) -> dict:
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    if system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})
    return {"messages": messages}
