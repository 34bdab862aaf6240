"""The training stages: which dataset kinds each one accepts, which model task it trains,
and how it trains (our own loop for pt and sft, a TRL trainer for dpo, orpo, kto and rm).

One module per stage (`pt.py`, `sft.py`, `dpo.py`, ...), each defining a `STAGE`; this registry lists
them all, including the ones not written yet, so that `--stage dpo` is refused with a clear
"not implemented yet" rather than an unknown name. Nothing here imports torch.
"""

from __future__ import annotations

from ...errors import RefusedError, TllmError
from ..recipe import STAGE_NAMES
from .base import Stage
from .dpo import STAGE as DPO
from .kto import STAGE as KTO
from .orpo import STAGE as ORPO
from .pt import STAGE as PT
from .rm import STAGE as RM
from .sft import STAGE as SFT

# The stages still to come, with what they will accept, so refusals can already say it.
_PLANNED = {
    "seq2seq": Stage("seq2seq", ("seq2seq", "chat"), "seq2seq", "encoder-decoder instruction tuning"),
    "classify": Stage("classify", ("classification",), "classify", "a classification head"),
    "rl": Stage("rl", ("chat",), "causal-lm", "online RL against a reward model"),
}

_READY = {s.name: s for s in (PT, SFT, DPO, ORPO, KTO, RM)}
STAGES: dict[str, Stage] = {name: _READY.get(name) or _PLANNED[name] for name in STAGE_NAMES}
assert set(STAGES) == set(STAGE_NAMES), "recipe.STAGE_NAMES and the registry disagree"


def get_stage(name: str) -> Stage:
    """The stage called `name`, refused if unknown or not implemented yet."""
    if name not in STAGES:
        raise TllmError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    stage = STAGES[name]
    if not stage.implemented:
        ready = ", ".join(s.name for s in STAGES.values() if s.implemented)
        raise RefusedError(f"stage {name} ({stage.summary}) is not implemented yet; "
                           f"stages that train today: {ready}")
    return stage


def check_kind(stage: Stage, dataset_name: str, kind: str) -> None:
    """Refuse a dataset whose kind the stage cannot train on, naming the kinds it takes."""
    if kind not in stage.kinds:
        takers = [s.name for s in STAGES.values() if kind in s.kinds and s.implemented]
        hint = f" ({kind} data trains with --stage {' or '.join(takers)})" if takers else ""
        raise RefusedError(f"stage {stage.name} trains on {' or '.join(stage.kinds)} datasets; "
                           f"dataset {dataset_name!r} is {kind}{hint}")
