"""The arena: contestants answer the same prompts, a judge (or a person) picks the better of
two anonymous answers, and a Bradley-Terry fit over all stored battles rates them.

A contestant is any `(prompt) -> answer` callable; `open_contestant` makes one from a name:
an adapter of this home, a model of this home's registry (a local model or a remote
OpenAI-compatible endpoint), or `home:PATH[:ADAPTER]` for another home's assistant. A judge
is any `(question, answer_a, answer_b) -> "a" | "b" | "tie"` callable: it sees the prompt
and the two answers only, never who wrote them, and which answer comes first is drawn at
random for every battle so position bias cannot favour one contestant.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ..adapters.store import list_adapters
from ..assistant.answer import AnswerOptions, Assistant, answer_text
from ..engine.choice import open_engine
from ..errors import TllmError
from ..home import Home
from ..models.registry import list_models
from .battles import HUMAN, VERDICTS, Battle, BattleStore
from .judge import EngineJudge, JudgeStats, compare

if TYPE_CHECKING:
    from .bradley_terry import Rating

Contestant = Callable[[str], str]
Judge = Callable[[str, str, str], str]

HOME_PREFIX = "home:"
MAX_REPORTED = 10  # bad prompt lines named in one error


# --- prompts -----------------------------------------------------------------------------


def read_prompts(path: str | Path) -> list[str]:
    """The prompts of a file: JSONL (.jsonl/.json: a string or an object with "prompt" or
    "question" each line) or plain text (one prompt a line). Blank lines are skipped; any
    bad line refuses the whole file, naming the lines, before a model is loaded."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TllmError(f"prompt file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TllmError(f"cannot read prompt file {path}: {exc}") from None
    as_json = path.suffix.lower() in (".jsonl", ".json")
    prompts, bad = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        prompt, problem = _json_prompt(line) if as_json else (line.strip(), None)
        if prompt is None:  # a bad line: the problem says why
            bad.append(f"line {number}: {problem}")
        else:
            prompts.append(prompt)
    if bad:
        shown = "; ".join(bad[:MAX_REPORTED]) + (
            f"; and {len(bad) - MAX_REPORTED} more" if len(bad) > MAX_REPORTED else ""
        )
        raise TllmError(f"{path} has {len(bad)} bad line(s): {shown}")
    if not prompts:
        raise TllmError(f"{path} holds no prompts")
    return prompts


def _json_prompt(line: str) -> tuple[str | None, str | None]:
    """(prompt, None) or (None, what is wrong with the line)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None, "not valid JSON"
    if isinstance(row, dict):
        row = row.get("prompt", row.get("question"))
        if row is None:
            return None, 'no "prompt" (or "question") field'
    if not isinstance(row, str):
        return None, "the prompt must be text"
    if not row.strip():
        return None, "the prompt is empty"
    return row, None


# --- contestants and judges from names ---------------------------------------------------


class EngineContestant:
    """A contestant answering through a home's assistant with an engine: its system prompt
    and sampling defaults (its documents stay out: a battle compares the models); with a
    seed, answer k uses seed + k, so a run repeats exactly while each round's answers still
    differ."""

    def __init__(self, assistant: Assistant, engine, max_tokens: int | None, seed: int | None):
        self.assistant, self.engine = assistant, engine
        self.sampling = {"max_tokens": max_tokens, "seed": seed}
        self.calls = 0

    def __call__(self, prompt: str) -> str:
        options = AnswerOptions(knowledge=False, sampling=self.sampling, attempt=self.calls)
        self.calls += 1
        question = [{"role": "user", "content": prompt}]
        return answer_text(self.assistant, self.engine, question, options).completion.text


def open_named_engine(home: Home, name: str, report=lambda message: None):
    """(engine, the home whose assistant it is) for a contestant or judge name: an adapter
    of this home (on its base model), a model of this home's registry (with no adapter),
    or `home:PATH[:ADAPTER]` (that home's assistant, or that adapter of it)."""

    if name.startswith(HOME_PREFIX):
        other, adapter = _other_home(name)
        config = other.load_config()
        return open_engine(other, config, adapter=adapter, report=report), other
    config = home.load_config()
    if name in list_adapters(home):
        return open_engine(home, config, adapter=name, engine="transformers", report=report), home
    if name in {entry.name for entry in list_models(home)}:
        bare = dataclasses.replace(config, adapters=[])  # the model itself, not the active adapter
        return open_engine(home, bare, model=name, report=report), home
    adapters = ", ".join(list_adapters(home)) or "none"
    models = ", ".join(entry.name for entry in list_models(home))
    raise TllmError(
        f"unknown contestant {name!r}: not an adapter ({adapters}), a model "
        f"({models}) or home:PATH[:ADAPTER]"
    )


def canonical_name(name: str) -> str:
    """The name battles are stored under: `home:` paths made absolute, so one home is one
    contestant whatever folder the command ran in."""
    name = name.strip()
    if not name.startswith(HOME_PREFIX):
        return name
    path, adapter = _split_home(name)
    return f"{HOME_PREFIX}{path.resolve()}" + (f":{adapter}" if adapter else "")


def _split_home(name: str) -> tuple[Path, str | None]:
    rest = name[len(HOME_PREFIX) :]
    path, adapter = Path(rest).expanduser(), None
    if not path.is_dir() and ":" in rest:
        where, _, adapter = rest.rpartition(":")
        path = Path(where).expanduser()
    return path, adapter or None


def _other_home(name: str) -> tuple[Home, str | None]:
    path, adapter = _split_home(name)
    if not (path / "assistant.yaml").is_file():
        raise TllmError(f"{name!r}: {path} is not a home (it has no assistant.yaml)")
    return Home.open(path), adapter


def open_contestant(
    home: Home,
    name: str,
    max_tokens: int | None = None,
    seed: int | None = None,
    engines: dict | None = None,
    report=lambda message: None,
) -> EngineContestant:
    """A contestant from a name (see `open_named_engine`); `engines` ({name: (engine,
    home)}) shares one loaded model between a contestant and a judge of the same name."""

    engine, owner = _cached_engine(home, name, engines, report)
    return EngineContestant(Assistant(owner, owner.load_config()), engine, max_tokens, seed)


class ModelJudge:
    """An arena judge backed by a model: `judge.compare` asks it with the two answers in
    both orders and only a verdict it gives both times counts (else a tie)."""

    def __init__(self, engine):
        self.engine = engine
        self.judge = EngineJudge(engine)
        self.stats = JudgeStats()  # calls made, replies with no readable verdict

    def __call__(self, question: str, answer_a: str, answer_b: str) -> str:
        return compare(self.judge, question, answer_a, answer_b, self.stats)


def open_judge(
    home: Home, name: str, engines: dict | None = None, report=lambda message: None
) -> ModelJudge:
    """A judge from a name, resolved like a contestant's."""
    return ModelJudge(_cached_engine(home, name, engines, report)[0])


def _cached_engine(home: Home, name: str, engines: dict | None, report):
    if engines is None:
        return open_named_engine(home, name, report)
    if name not in engines:
        engines[name] = open_named_engine(home, name, report)
    return engines[name]


# --- battles -----------------------------------------------------------------------------


def plan_battles(
    names: list[str], prompts: int, rounds: int = 1, pairs: int | None = None, seed: int = 0
) -> list[tuple[int, int, str, str]]:
    """(round, prompt index, shown first, shown second) for every battle: each round,
    every pair of contestants meets on every prompt, or `pairs` pairs drawn at random per
    prompt; which one is shown first is drawn for each battle."""
    if len(set(names)) < 2:
        raise TllmError("the arena needs at least two different contestants")
    if len(set(names)) != len(names):
        raise TllmError(f"a contestant is named twice: {', '.join(names)}")
    if rounds < 1:
        raise TllmError("--rounds must be at least 1")
    everyone = list(itertools.combinations(names, 2))
    if pairs is not None and not 1 <= pairs <= len(everyone):
        raise TllmError(f"pairs per prompt must be between 1 and {len(everyone)}")
    rng = random.Random(seed)
    plan = []
    for round_ in range(rounds):
        for prompt in range(prompts):
            chosen = everyone if pairs is None else rng.sample(everyone, pairs)
            for a, b in chosen:
                if rng.random() < 0.5:
                    a, b = b, a
                plan.append((round_, prompt, a, b))
    return plan


def run_battles(
    store: BattleStore,
    contestants: dict[str, Contestant],
    prompts: list[str],
    judge: Judge,
    judge_name: str,
    rounds: int = 1,
    pairs: int | None = None,
    seed: int = 0,
    progress: Callable[[int], None] = lambda done: None,
) -> list[Battle]:
    """Fight the planned battles, storing each as soon as it is judged (an interrupted
    run keeps what it finished). Each contestant answers each prompt once per round.
    `progress(done)` is told how many battles are finished after each one."""
    plan = plan_battles(list(contestants), len(prompts), rounds, pairs, seed)
    answers: dict[tuple[str, int, int], str] = {}

    def answer(name: str, round_: int, prompt: int) -> str:
        key = (name, round_, prompt)
        if key not in answers:
            answers[key] = contestants[name](prompts[prompt])
        return answers[key]

    battles = []
    for round_, prompt, a, b in plan:
        answer_a, answer_b = answer(a, round_, prompt), answer(b, round_, prompt)
        verdict = judge(prompts[prompt], answer_a, answer_b)
        if verdict not in VERDICTS:
            raise TllmError(
                f"the judge {judge_name!r} gave {verdict!r}, not one of {', '.join(VERDICTS)}"
            )
        battle = store.add(prompts[prompt], a, b, answer_a, answer_b, verdict, judge_name, round_)
        battles.append(battle)
        progress(len(battles))
    return battles


# --- people's votes (the web chat's arena view calls these through the API) --------------


def open_human_battle(
    store: BattleStore, prompt: str, answers: dict[str, str], rng: random.Random | None = None
) -> Battle:
    """Store two contestants' answers ({name: answer}) to `prompt` in random order, waiting
    for a person's vote. Show the voter `battle.anonymous()`, never the names."""
    if len(answers) != 2:
        raise TllmError("a battle is between exactly two contestants")
    (a, answer_a), (b, answer_b) = (rng or random.Random()).sample(list(answers.items()), 2)
    return store.add(prompt, a, b, answer_a, answer_b)


def record_vote(store: BattleStore, battle_id: int, verdict: str) -> Battle:
    """A person's vote on a pending battle: "a" (the answer shown first), "b" or "tie".
    Refuses unknown battles, bad verdicts and a second vote; returns the battle, names
    included, so the voter can be told who was who."""
    return store.vote(battle_id, verdict, HUMAN)


# --- ratings -----------------------------------------------------------------------------


def leaderboard(
    store: BattleStore, bootstrap: int = 200, seed: int = 0, judges: Iterable[str] | None = None
) -> list[Rating]:
    """Ratings from every decided battle stored (only those of `judges`, when given)."""
    # numpy on demand: the server imports this module, and numpy loaded before llama.cpp's
    # CUDA backend made the model load crash (H100, llama-cpp-python 0.3.36)
    from .bradley_terry import fit_ratings

    return fit_ratings(store.outcomes(judges), bootstrap, seed)


def plot_leaderboard(ratings: list[Rating], path: Path) -> Path:
    """A PNG of each contestant's rating with its 95% interval, best at the top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = list(reversed(ratings))  # barh draws from the bottom up
    names = [r.name for r in ordered]
    values = [r.rating for r in ordered]
    errors = [[r.rating - r.low for r in ordered], [r.high - r.rating for r in ordered]]
    figure, axis = plt.subplots(figsize=(7, 1.2 + 0.45 * len(ordered)))
    axis.errorbar(values, range(len(ordered)), xerr=errors, fmt="o", capsize=4)
    axis.set_yticks(range(len(ordered)), names)
    axis.axvline(1000, color="grey", linewidth=0.8, linestyle=":")
    axis.set_xlabel("rating (Bradley-Terry, Elo scale; bars: 95% bootstrap interval)")
    axis.set_title("Arena leaderboard")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
