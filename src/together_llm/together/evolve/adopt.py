"""Whether `tllm together evolve --adopt` makes its winner the assistant's active adapter:
only when the winner beats, on the same evaluation rows, what the assistant uses now (its
active adapters together, or the base model when none is active). The reason is given
either way."""

from __future__ import annotations

from ...errors import TllmError
from ...models.fingerprint import fingerprint
from ...models.registry import get_model
from .pool import AdapterPool
from .score import beats, describe


def decide_adoption(
    home,
    pool: AdapterPool,
    *,
    winner: str,
    adopted_name: str,
    adopt: bool,
    scores: dict,
    population: list[str],
    merge: dict,
    metric: str,
) -> dict:
    """{"adopted", "reason", and when compared "current", "current_scores",
    "winner_scores"}. `winner` is the run's name for the winner, `adopted_name` the adapter
    name the assistant would use; `scores` the run's scores by name; `merge` plan_merge's
    answer for the initial `population`."""
    config = home.load_config()
    active = list(config.adapters)
    current = f"adapter(s) {', '.join(active)}" if active else f"the base model {config.model}"
    if not adopt:
        return {
            "adopted": False,
            "reason": f"not adopted: --adopt was not given; the assistant still uses {current}",
        }
    if active == [adopted_name] and adopted_name == winner:
        return {"adopted": False, "reason": f"not adopted: {winner} is already the active adapter"}
    problem = _other_base(home, config.model, merge)
    if problem:
        return {"adopted": False, "reason": f"not adopted: {problem}"}
    fingerprint = merge["cards"][0].base_fingerprint
    try:
        if len(active) == 1 and active[0] in population and active[0] in scores:
            theirs = scores[active[0]]  # a starting member, already scored
        else:
            for name in active:
                if name not in pool.keys:
                    pool.load_home_adapter(home, name, fingerprint)
            theirs = pool.score(active)
    except TllmError as exc:
        return {
            "adopted": False,
            "reason": f"not adopted: the active adapter cannot be scored on this base ({exc})",
        }
    mine = scores[winner]
    decision = {"current": active or None, "current_scores": theirs, "winner_scores": mine}
    if beats(metric, mine, theirs):
        return {
            **decision,
            "adopted": True,
            "reason": f"adopted {adopted_name}: {describe(metric, mine)} beats {current}'s "
            f"{describe(metric, theirs)}",
        }
    return {
        **decision,
        "adopted": False,
        "reason": f"not adopted: {winner}'s {describe(metric, mine)} does not beat "
        f"{current}'s {describe(metric, theirs)}; the assistant still uses {current}",
    }


def _other_base(home, model_name: str, merge: dict) -> str | None:
    """Why the population cannot be the assistant's adapter: its base is another model."""
    if model_name == merge["base"].name:
        return None

    try:
        entry = get_model(home, model_name)
        same = (
            entry.hf_dir is not None
            and fingerprint(entry.hf_dir) == merge["cards"][0].base_fingerprint
        )
    except (TllmError, OSError, ValueError):
        same = False
    return (
        None
        if same
        else (
            f"the population's base {merge['base'].name} is not the assistant's model {model_name}"
        )
    )
