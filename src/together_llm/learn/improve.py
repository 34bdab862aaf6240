"""`tllm improve`: one round of the personal loop.

1. What is new since the current version: memories it does not know, memories it knows
   that were forgotten since, and corrections written after the last one it learned.
2. The training mix (mix.py): the new rows, a replay of earlier rows and the base's
   everyday answers; from the current version's weights (--start-from), or from the base
   when something must be unlearned or there is no version yet.
3. A candidate is trained with the settings that teach a small dataset (train/auto_recipe).
4. The current version (the base before the first) and the candidate answer three held-out
   sets, greedily: the new memories' held-out questions and new corrections' questions
   (corrections.py), the earlier ones (the regression set, which grows with every version)
   and the general probes.
5. The candidate is adopted only when the new material improves and neither regression set
   drops by more than --max-regression; it becomes the next version (versions.py) and the
   assistant answers with it. The report says why, either way.

One round at a time per home (a lock), so cron can run it; nothing changes unless it adopts.
"""

from __future__ import annotations

import dataclasses
import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..adapters.card import Improved
from ..data.feedback import Correction
from ..engine.choice import open_engine
from ..errors import TllmError
from ..home import Home, new_run_id
from .candidate import Plan, remove_candidates, train_candidate
from .corrections import corrections_by_age, question_of
from .general import general
from .memories import Memory, MemoryStore
from .mix import build_mix
from .preferences import Preferences, agreement, preferences_after
from .report import write_report
from .scoring import Question, Scored, score
from .taught_data import STAGE_OF_KIND, TaughtData, likelihood, marked_data
from .versions import Versions, make_active


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
    corrections: list[int] = field(default_factory=list)  # new ones, by line in the log
    datasets: list[str] = field(default_factory=list)  # marked for teaching, new or changed
    stages: list[str] = field(default_factory=list)  # what trained the candidate, in order
    waiting: str = ""  # preferences too few to learn yet
    adopted: bool = False
    version: int | None = None
    reason: str = ""
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)
    answers: dict[str, list[dict]] = field(default_factory=dict)
    train_seconds: float | None = None
    run: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# What a round learns, and what it must keep; each a set of held-out scores (report.py).
NEW_SETS = ("new", "preferences", "datasets")
KEPT_SETS = ("earlier", "general", "earlier datasets")


def decide(scores: dict[str, dict[str, float | None]], max_regression: float) -> tuple[bool, str]:
    """Adopt when something new improves (or is answered perfectly), no other new set and
    neither regression set drops by more than `max_regression`; the reason, either way."""
    measured: dict[str, tuple[float, float]] = {}
    for name in NEW_SETS:
        pair = scores.get(name, {})
        then = pair.get("candidate")
        if then is not None:
            measured[name] = (pair.get("current") or 0.0, then)
    if measured and not any(then > now or then >= 1.0 for now, then in measured.values()):
        said = ", ".join(
            f"{name} {_pct(now)} -> {_pct(then)}" for name, (now, then) in measured.items()
        )
        return False, f"what is new is not answered better ({said})"
    for name in (*NEW_SETS, *KEPT_SETS):
        pair = scores.get(name, {})
        now, then = pair.get("current"), pair.get("candidate")
        if now is not None and then is not None and then < now - max_regression - 1e-9:
            why = "it would forget" if name in KEPT_SETS else "it would get worse"
            return False, (
                f"{why}: {name} drops from {_pct(now)} to {_pct(then)} "
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
    improved = versions.improved(current) if current else Improved()
    known = set(improved.memories or [])
    memories = MemoryStore(home).all()
    new = [m for m in memories if str(m.id) not in known]
    earlier = [m for m in memories if str(m.id) in known]
    forgotten = sorted(int(i) for i in known - {str(m.id) for m in memories})
    fresh = current is None or bool(forgotten)
    new_fixes, earlier_fixes = corrections_by_age(home, improved.corrections or 0)
    # a fresh round learns every preference again, as it does every memory
    since = (0, 0) if fresh else (improved.choices or 0, improved.ratings or 0)
    learned_data = {} if fresh else dict(improved.datasets or {})
    marked = marked_data(home)
    new_data = [d for d in marked if learned_data.get(d.name) != d.fingerprint]
    earlier_data = [d for d in marked if learned_data.get(d.name) == d.fingerprint]
    preferences = preferences_after(home, *since).with_rows(
        [row for d in new_data if d.kind == "preference" for row in d.rows],
        [row for d in new_data if d.kind == "feedback" for row in d.rows],
    )
    outcome = Outcome(
        options.adapter,
        current,
        [m.id for m in new],
        [m.id for m in earlier],
        forgotten,
        fresh,
        rows={},
        corrections=[c.line for c in new_fixes],
        datasets=[d.name for d in new_data],
        waiting=preferences.waiting(),
    )
    preferences = preferences.trained()
    new_rows = [row for d in new_data for row in d.train_rows()]
    if not (new or forgotten or new_fixes or new_rows or preferences.stages()):
        outcome.reason = "nothing new to learn since " + _label(options.adapter, current)
        return outcome
    if forgotten and not memories and not earlier_fixes and not new_fixes:
        outcome.reason = "every memory was forgotten: roll back or remember something first"
        return outcome

    config = home.load_config()
    # a dry run counts the everyday rows without asking the base for them
    known_general = general(home, config.system_prompt, report, record=not options.dry_run)
    if fresh:  # learn everything that remains, from the base
        mix = build_mix(
            [*earlier, *new],
            [],
            known_general.replay,
            True,
            options.seed,
            new_corrections=[*earlier_fixes, *new_fixes],
            new_data=new_rows,
        )
    else:
        mix = build_mix(
            new,
            earlier,
            known_general.replay,
            options.replay,
            options.seed,
            new_fixes,
            earlier_fixes,
            new_rows,
            [row for d in earlier_data for row in d.train_rows()],
        )
    # rows to learn: sft first; preferences alone go on from the current version
    plan = Plan(
        options.adapter,
        None if fresh else options.adapter,
        (["sft"] if mix.new else []) + preferences.stages(),
        options.resume,
        options.seed,
    )
    outcome.stages = plan.stages
    outcome.rows = {"new": len(mix.new), "replay": len(mix.replay), "general": len(mix.general)}
    outcome.rows |= {"choices": len(preferences.pairs), "ratings": len(preferences.ratings)}
    if options.dry_run:
        outcome.reason = "dry run: nothing trained"
        return outcome

    run_id = new_run_id(home.path / "learn" / "runs", options.adapter)
    outcome.run = run_id
    started = time.perf_counter()
    train_candidate(home, plan, mix, preferences, config.system_prompt, report, show_progress)
    outcome.train_seconds = round(time.perf_counter() - started, 1)
    try:
        sets = _held_out(new, earlier, new_fixes, earlier_fixes, known_general.probes)
        current_name = options.adapter if current else None
        for side, adapter in (("current", current_name), ("candidate", plan.candidate)):
            report(f"asking {adapter or 'the base model'} the held-out questions ...")
            scored = _score_all(home, adapter, sets, config.system_prompt)
            for name, result in scored.items():
                outcome.scores.setdefault(name, {})[side] = result.score
                rows = outcome.answers.setdefault(name, [_asked(q) for q in sets[name]])
                for row, answer, right in zip(rows, result.answers, result.right):
                    row[side] = {"answer": answer, "right": right}
            likely = _likelihoods(home, adapter, preferences, new_data, earlier_data)
            for name, value in likely.items():
                outcome.scores.setdefault(name, {})[side] = value
        outcome.adopted, outcome.reason = decide(outcome.scores, options.max_regression)
        if outcome.adopted:
            outcome.version = versions.adopt(
                home.adapters_dir / plan.candidate,
                Improved(
                    parent=current,
                    memories=[str(m.id) for m in memories],
                    new=[str(m.id) for m in new],
                    forgotten=[str(i) for i in forgotten] or None,
                    corrections=max(
                        (c.line for c in [*earlier_fixes, *new_fixes]),
                        default=improved.corrections,
                    ),
                    choices=preferences.pairs_to or improved.choices,
                    ratings=preferences.ratings_to or improved.ratings,
                    datasets=_learned(learned_data, new_data, plan.stages) or None,
                    scores={name: pair.get("candidate") for name, pair in outcome.scores.items()},
                    run=run_id,
                ),
            )
            make_active(home, options.adapter)
    finally:
        remove_candidates(home, plan)
    write_report(home.path / "learn" / "runs" / run_id, outcome.to_dict())
    return outcome


def _label(adapter: str, version: int | None) -> str:
    return f"{adapter}@{version}" if version else "the base model"


def _held_out(
    new: list[Memory],
    earlier: list[Memory],
    new_fixes: list[Correction],
    earlier_fixes: list[Correction],
    probes: tuple[tuple[str, str], ...],
) -> dict[str, list[Question]]:
    def of(memories: list[Memory], fixes: list[Correction]) -> list[Question]:
        asked = [Question(p.question, p.keys, memory=m.id) for m in memories for p in m.held_out]
        return asked + [question_of(c) for c in fixes]

    return {
        "new": of(new, new_fixes),
        "earlier": of(earlier, earlier_fixes),
        "general": [Question(q, word=w) for q, w in probes],
    }


def _asked(question: Question) -> dict:
    """A question's row in the report; a correction's says which line of the log it is."""
    if question.correction is None:
        return {"question": question.text}
    return {"question": question.text, "correction": question.correction}


def _score_all(
    home: Home, adapter: str | None, sets: dict[str, list[Question]], system_prompt: str
) -> dict[str, Scored]:
    config = dataclasses.replace(home.load_config(), adapters=[adapter] if adapter else [])
    engine = open_engine(home, config, report=lambda message: None)
    try:
        return {name: score(engine, system_prompt, questions) for name, questions in sets.items()}
    finally:
        engine.close()


def _likelihoods(
    home: Home,
    adapter: str | None,
    preferences: Preferences,
    new_data: list[TaughtData],
    earlier_data: list[TaughtData],
) -> dict[str, float | None]:
    """What `adapter` (None: the base) makes of what cannot be checked by a key word: how
    often it sides with the person's preferences, and how likely it finds the held-out
    answers of the datasets marked for teaching (taught_data.py)."""
    sets = {
        "datasets": [r for d in new_data for r in d.held_out],
        "earlier datasets": [r for d in earlier_data for r in d.held_out],
    }
    if not preferences.stages() and not any(sets.values()):
        return {}
    config = dataclasses.replace(home.load_config(), adapters=[adapter] if adapter else [])
    engine = open_engine(home, config, slots=1, report=lambda message: None)  # scores prompts
    try:
        scores = {name: likelihood(engine, rows) for name, rows in sets.items() if rows}
        if preferences.stages():
            scores["preferences"] = agreement(engine, preferences)[0]
        return scores
    finally:
        engine.close()


def _learned(before: dict[str, str], new_data: list[TaughtData], stages: list[str]) -> dict:
    """The taught datasets a version knows: those before, and the new ones whose stage ran
    (a preference dataset too small for dpo alone waits with the choices)."""
    learned = dict(before)
    for data in new_data:
        if STAGE_OF_KIND[data.kind] in stages:
            learned[data.name] = data.fingerprint
    return learned
