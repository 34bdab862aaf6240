"""`tllm improve`: one round of the personal loop.

1. What is new since the current version: memories it does not know, and memories it knows
   that were forgotten since.
2. The training mix (mix.py): the new rows, a replay of earlier rows and the base's
   everyday answers; from the current version's weights (--start-from), or from the base
   when something must be unlearned or there is no version yet.
3. A candidate is trained with the settings that teach a small dataset (train/auto_recipe).
4. The current version (the base before the first) and the candidate answer three held-out
   sets, greedily: the new memories' held-out questions, the earlier memories' held-out
   questions (the regression set, which grows with every version) and the general probes.
5. The candidate is adopted only when the new material improves and neither regression set
   drops by more than --max-regression; it becomes the next version (versions.py) and the
   assistant answers with it. The report says why, either way.

One round at a time per home (a lock), so cron can run it; nothing changes unless it adopts.
"""

from __future__ import annotations

import dataclasses
import fcntl
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..adapters.card import Improved
from ..data.store import DatasetWriter
from ..engine.choice import open_engine
from ..errors import TllmError
from ..home import Home, new_run_id
from ..train.recipe import load_recipe
from ..train.run import train_record
from .general import general
from .memories import Memory, MemoryStore
from .mix import Mix, build_mix, chat_row
from .report import write_report
from .scoring import Question, Scored, score
from .versions import Versions, make_active

# The mix is trained for PASSES epochs, the new rows in it NEW_COPIES times and the
# replayed ones REPLAY_COPIES times: a new row is seen 9 times (what a small dataset needs,
# train/auto_recipe.py), a replayed one 6 (it is known, and must hold against the new rows'
# pull), a general one 3 (the base's own answers, which the model still gives). About half
# the steps of 9 passes over everything.
NEW_COPIES = 3
REPLAY_COPIES = 2
GENERAL_COPIES = 1
PASSES = 3


@dataclass
class ImproveOptions:
    adapter: str = "me"
    max_regression: float = 0.15
    replay: bool = True
    dry_run: bool = False
    resume: bool = False
    seed: int = 42


@dataclass
class Outcome:
    """What a round did: the plan, and when it trained, the scores and the decision."""

    adapter: str
    current: int | None
    new: list[int]
    earlier: list[int]
    forgotten: list[int]
    fresh: bool  # trained from the base, not from the current version
    rows: dict[str, int]
    adopted: bool = False
    version: int | None = None
    reason: str = ""
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)
    answers: dict[str, list[dict]] = field(default_factory=dict)
    train_seconds: float | None = None
    run: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def decide(scores: dict[str, dict[str, float | None]], max_regression: float) -> tuple[bool, str]:
    """Adopt when the new material improves and neither regression set drops by more than
    `max_regression`; the reason, either way."""
    new = scores.get("new", {})
    gained, before = new.get("candidate"), new.get("current") or 0.0
    if gained is not None and gained <= before and gained < 1.0:
        return False, (
            f"the new memories are not answered better ({_pct(before)} now, "
            f"{_pct(gained)} with the candidate)"
        )
    for name in ("earlier", "general"):
        pair = scores.get(name, {})
        now, then = pair.get("current"), pair.get("candidate")
        if now is not None and then is not None and then < now - max_regression - 1e-9:
            return False, (
                f"it would forget: {name} drops from {_pct(now)} to {_pct(then)} "
                f"(more than --max-regression {max_regression:g})"
            )
    return True, "the new material improves and nothing earlier regresses"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


@contextmanager
def one_at_a_time(home: Home) -> Iterator[None]:
    path = home.path / "learn" / "improve.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TllmError("another `tllm improve` is running in this home; try later") from None
        yield


def improve(
    home: Home,
    options: ImproveOptions,
    report: Callable[[str], None] = print,
    show_progress: bool = False,
) -> Outcome:
    with one_at_a_time(home):
        return _round(home, options, report, show_progress)


def _round(home: Home, options: ImproveOptions, report, show_progress: bool) -> Outcome:
    versions = Versions(home, options.adapter)
    current = versions.current()
    known = set(versions.improved(current).memories or []) if current else set()
    memories = MemoryStore(home).all()
    new = [m for m in memories if str(m.id) not in known]
    earlier = [m for m in memories if str(m.id) in known]
    forgotten = sorted(int(i) for i in known - {str(m.id) for m in memories})
    fresh = current is None or bool(forgotten)
    config = home.load_config()
    outcome = Outcome(
        options.adapter,
        current,
        [m.id for m in new],
        [m.id for m in earlier],
        forgotten,
        fresh,
        rows={},
    )
    if not new and not forgotten:
        outcome.reason = "nothing new to learn since " + _label(options.adapter, current)
        return outcome
    if not memories:
        outcome.reason = "every memory was forgotten: roll back or remember something first"
        return outcome

    known_general = general(home, config.system_prompt, report)
    if fresh:  # learn everything that remains, from the base
        mix = build_mix([*earlier, *new], [], known_general.replay, True, options.seed)
    else:
        mix = build_mix(new, earlier, known_general.replay, options.replay, options.seed)
    outcome.rows = {"new": len(mix.new), "replay": len(mix.replay), "general": len(mix.general)}
    if options.dry_run:
        outcome.reason = "dry run: nothing trained"
        return outcome

    run_id = new_run_id(home.path / "learn" / "runs", options.adapter)
    outcome.run = run_id
    candidate = f"{options.adapter}.candidate"
    started = time.perf_counter()
    _train(home, options, mix, config.system_prompt, candidate, fresh, report, show_progress)
    outcome.train_seconds = round(time.perf_counter() - started, 1)
    try:
        sets = _held_out(new, earlier, known_general.probes)
        current_name = options.adapter if current else None
        for side, adapter in (("current", current_name), ("candidate", candidate)):
            report(f"asking {adapter or 'the base model'} the held-out questions ...")
            scored = _score_all(home, adapter, sets, config.system_prompt)
            for name, result in scored.items():
                outcome.scores.setdefault(name, {})[side] = result.score
                rows = outcome.answers.setdefault(name, [{"question": q.text} for q in sets[name]])
                for row, answer, right in zip(rows, result.answers, result.right):
                    row[side] = {"answer": answer, "right": right}
        outcome.adopted, outcome.reason = decide(outcome.scores, options.max_regression)
        if outcome.adopted:
            outcome.version = versions.adopt(
                home.adapters_dir / candidate,
                Improved(
                    parent=current,
                    memories=[str(m.id) for m in memories],
                    new=[str(m.id) for m in new],
                    forgotten=[str(i) for i in forgotten] or None,
                    scores={name: pair.get("candidate") for name, pair in outcome.scores.items()},
                    run=run_id,
                ),
            )
            make_active(home, options.adapter)
    finally:
        shutil.rmtree(home.adapters_dir / candidate, ignore_errors=True)
    write_report(home.path / "learn" / "runs" / run_id, outcome.to_dict())
    return outcome


def _label(adapter: str, version: int | None) -> str:
    return f"{adapter}@{version}" if version else "the base model"


def _train(home, options, mix: Mix, system_prompt, candidate, fresh, report, show_progress):
    name = f"learn-{options.adapter}"
    with DatasetWriter(
        home, name, "chat", source="tllm improve", format="chat", overwrite=True
    ) as out:
        for question, answer in (
            mix.new * NEW_COPIES + mix.replay * REPLAY_COPIES + mix.general * GENERAL_COPIES
        ):
            out.add(chat_row(question, answer, system_prompt))
        out.commit()
    recipe = load_recipe(
        None,
        {
            "data": name,
            "stage": "sft",
            "method": "lora",
            "name": candidate,
            "overwrite": True,
            "resume": options.resume or None,
            "start_from": None if fresh else options.adapter,
            "seed": options.seed,
            "epochs": PASSES,
        },
    )
    report(
        f"training a candidate on {len(mix.rows)} rows ({len(mix.new)} new, "
        f"{len(mix.replay)} replayed, {len(mix.general)} general) "
        + ("from the base" if fresh else f"from {options.adapter}")
    )
    train_record(home, recipe, report, show_progress)


def _held_out(
    new: list[Memory], earlier: list[Memory], probes: tuple[tuple[str, str], ...]
) -> dict[str, list[Question]]:
    def of(memories: list[Memory]) -> list[Question]:
        return [Question(p.question, p.keys, memory=m.id) for m in memories for p in m.held_out]

    return {
        "new": of(new),
        "earlier": of(earlier),
        "general": [Question(q, word=w) for q, w in probes],
    }


def _score_all(
    home: Home, adapter: str | None, sets: dict[str, list[Question]], system_prompt: str
) -> dict[str, Scored]:
    config = dataclasses.replace(home.load_config(), adapters=[adapter] if adapter else [])
    engine = open_engine(home, config, report=lambda message: None)
    try:
        return {name: score(engine, system_prompt, questions) for name, questions in sets.items()}
    finally:
        engine.close()
