"""What a finished training run reports: `runs/<id>/metrics.json`, and what `train` hands its
caller. Every run reports the same figures (the typed fields); each trainer adds its own
(`extra`: Outcome.extra of trainer.py, e.g. a classifier's labels and accuracy, the
preprocessing counts, a TRL stage's last measures); rank 0 adds where the result was saved.

`to_dict` is metrics.json key for key, in the order it always had: the common figures, the
trainer's own, then "result" (absent on the other processes of a torchrun, which is how the
CLI tells them apart).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunRecord:
    run_id: str  # the run's folder, runs/<run_id>/
    stage: str
    method: str
    base: str | None  # the base model's name (resolved before the run starts)
    data: str  # the dataset's name
    steps: int
    train_loss: float | None
    eval_loss: float | None  # None: no held-out rows, or none evaluated
    tokens: int  # tokens trained on
    seconds: float  # training time
    tokens_per_s: float
    examples: int  # training examples learned from
    eval_examples: int
    processes: int  # torchrun's world size (1 without it)
    extra: dict[str, Any] = field(default_factory=dict)  # the trainer's own figures
    result: str | None = None  # the saved adapter's or model's folder (rank 0 only)

    @property
    def labels(self) -> list[str] | None:
        """A classifier's classes, in the order of its outputs (the loop trainer's extra)."""
        return self.extra.get("labels")

    def to_dict(self) -> dict[str, Any]:
        common = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("extra", "result")
        }
        result = {} if self.result is None else {"result": self.result}
        return {**common, **self.extra, **result}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """The record of metrics.json's content `data`: its keys that are no field are the
        trainer's own (`extra`)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(
            **{k: v for k, v in data.items() if k in names},
            extra={k: v for k, v in data.items() if k not in names},
        )
