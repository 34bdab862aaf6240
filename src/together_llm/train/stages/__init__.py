"""The training stages: which dataset kinds each one accepts, which model task it trains,
and how it trains (our own loop for pt, sft, seq2seq and classify, a TRL trainer for dpo,
orpo, kto, rm and rl).

One module per stage (`pt.py`, `sft.py`, `dpo.py`, ...), each defining a `STAGE`; this
registry lists them in the order `--stage` shows them. Nothing here imports torch.
"""

from __future__ import annotations

from ...errors import RefusedError, TllmError
from ...methods import METHODS
from .base import Stage
from .classify import STAGE as CLASSIFY
from .dpo import STAGE as DPO
from .kto import STAGE as KTO
from .orpo import STAGE as ORPO
from .pt import STAGE as PT
from .rl import STAGE as RL
from .rm import STAGE as RM
from .seq2seq import STAGE as SEQ2SEQ
from .sft import STAGE as SFT

STAGES: dict[str, Stage] = {s.name: s for s in (PT, SFT, SEQ2SEQ, CLASSIFY, DPO, ORPO, KTO, RM, RL)}
STAGE_NAMES = tuple(STAGES)  # the recipe's choices


def get_stage(name: str) -> Stage:
    """The stage called `name`, refused if unknown."""
    if name not in STAGES:
        raise TllmError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    return STAGES[name]


def check_kind(stage: Stage, dataset_name: str, kind: str) -> None:
    """Refuse a dataset whose kind the stage cannot train on, naming the kinds it takes."""
    if kind not in stage.kinds:
        takers = [s.name for s in STAGES.values() if kind in s.kinds]
        hint = f" ({kind} data trains with --stage {' or '.join(takers)})" if takers else ""
        raise RefusedError(
            f"stage {stage.name} trains on {' or '.join(stage.kinds)} datasets; "
            f"dataset {dataset_name!r} is {kind}{hint}"
        )


def check_method(stage: Stage, method: str) -> None:
    """Refuse a method the stage cannot train with, naming those it can."""
    reason = stage.refused_methods.get(method)
    if reason is not None:
        works = [m for m in METHODS if m not in stage.refused_methods]
        raise RefusedError(
            f"--stage {stage.name} cannot train with --method {method}: "
            f"{reason}; methods that work: {', '.join(works)}"
        )
