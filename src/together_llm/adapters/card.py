"""An adapter's card: `card.json` beside its PEFT files, the record of what the adapter is
(its base, stage and method) and where it came from (its data and run, its federation, its
merge parents, its evolution, its import). Training (train/run.py, through save.py), the
federation (together/apps.py), merging (merge.py), evolution (together/evolve/) and import
(exchange.py) write one; whatever must know an adapter's base, stage or lineage reads one.

The JSON is what those writers wrote as plain dicts before this type, key for key:
- keys in one order, the order every writer used (name and created first, then what the
  adapter is, then where it came from), so `tllm adapters show` lists them as before;
- a field left None is left out (labels, reward, merge... appear only where they apply),
  except the keys a section always writes (`ALWAYS`) and those a card names in `nulls`;
- an old or foreign card reads back whole: keys this version does not know stay in `extra`,
  and so does a known key whose value is not of its field's type (a hand-edited card), its
  field left None so that readers see "not recorded" rather than fail; both are written
  back as they were read.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

CARD_FILE = "card.json"

# What a parent's card passes on to a merged card's lineage: its entry in `parents`.
LINEAGE = ("created", "data", "steps", "provenance", "merge", "parents", "evolve")


@dataclass(kw_only=True)
class JsonRecord:
    """A JSON object read into typed fields (the module's docstring has the rules)."""

    ALWAYS: ClassVar[tuple[str, ...]] = ()  # written even when None: their writer always did

    # Keys of the JSON that are no field of this type, or not of their field's type.
    extra: dict[str, Any] = field(default_factory=dict)
    # Fields written as null when None instead of left out (what a writer wrote as null, or
    # an old card held as null).
    nulls: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Only a field still None needs the mark: one with a value is written anyway, and
        # dropping the mark then keeps from_dict(to_dict(card)) == card.
        self.nulls = frozenset(
            name
            for name in self.nulls
            if name in _fields(type(self)) and name not in self.ALWAYS
            if getattr(self, name) is None
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """The record of JSON object `data`; missing keys leave their field None."""
        hints = _hints(cls)
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        nulls = set()
        for name, key in _fields(cls).items():
            if key not in data:
                continue
            value = data[key]
            if value is None:
                nulls.add(name)
            elif _fits(value, hints[name]):
                values[name] = _load(value, hints[name])
            else:
                extra[key] = value
        keys = set(_fields(cls).values())
        extra.update((key, value) for key, value in data.items() if key not in keys)
        return cls(**values, extra=extra, nulls=frozenset(nulls))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, key in _fields(type(self)).items():
            value = getattr(self, name)
            if value is None and key in self.extra:
                out[key] = self.extra[key]  # as read: not of its field's type
            elif value is not None or name in self.ALWAYS or name in self.nulls:
                out[key] = _dump(value)
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


@dataclass(kw_only=True)
class Federated(JsonRecord):
    """`federated`: the federation a federated adapter comes from (together/apps.py)."""

    ALWAYS = (
        "run_id",
        "rounds",
        "peers",
        "strategy",
        "aggregate",
        "local_steps",
        "freeze_a",
        "transport",
        "dp",
    )

    run_id: str | None = None
    rounds: int | None = None
    peers: list[str] | None = None
    strategy: str | None = None
    aggregate: str | None = None
    local_steps: int | None = None
    freeze_a: bool | None = None
    transport: str | None = None
    dp: dict[str, float] | None = None  # {"noise", "clip"}; null: no differential privacy


@dataclass(kw_only=True)
class Merged(JsonRecord):
    """`merge`: how a merged adapter's parents were combined (merge.py)."""

    ALWAYS = ("method", "weights", "density")

    method: str | None = None
    weights: list[float] | None = None
    density: float | None = None  # null for the methods that prune nothing
    seed: int | None = None  # DARE's random pruning: written for the dare_* methods only


@dataclass(kw_only=True)
class Evolved(JsonRecord):
    """`evolve`: the evolution run that made a candidate, and its scores (together/evolve/)."""

    ALWAYS = ("run", "generation", "data", "metric", "scores")

    run: str | None = None
    generation: int | None = None
    data: str | None = None  # the evaluation dataset
    metric: str | None = None
    scores: dict[str, float] | None = None
    candidate: str | None = None  # the winner's name among its run's candidates


@dataclass(kw_only=True)
class Improved(JsonRecord):
    """`improved`: the version of the assistant's adapter that `tllm improve` adopted
    (learn/): its number, the version it grew from, what it learned and its scores."""

    ALWAYS = ("version", "parent", "memories", "scores")

    version: int | None = None
    parent: int | None = None  # null: trained from the base
    memories: list[str] | None = None  # the ids of every memory this version knows
    new: list[str] | None = None  # the ids it learned that its parent did not know
    forgotten: list[str] | None = None  # the ids its parent knew and it was made to unlearn
    corrections: int | None = None  # it learned feedback/corrections.jsonl up to this line
    choices: int | None = None  # and choices.jsonl (dpo) and ratings.jsonl (kto) up to these
    ratings: int | None = None
    datasets: dict[str, str] | None = None  # datasets marked for teaching it learned: fingerprints
    scores: dict[str, float | None] | None = None  # held-out: new, earlier, general
    run: str | None = None  # the improve run, learn/runs/<run>/


@dataclass(kw_only=True)
class Imported(JsonRecord):
    """`imported`: the archive an imported adapter came in (exchange.py)."""

    ALWAYS = ("source", "sha256", "at", "name", "base")

    source: str | None = field(default=None, metadata={"key": "from"})  # the archive's file
    sha256: str | None = None
    at: str | None = None
    name: str | None = None  # what the sender called the adapter and its base
    base: str | None = None


@dataclass(kw_only=True)
class AdapterCard(JsonRecord):
    """card.json. A parent's entry in a merged card's `parents` is a card too, holding its
    name and what LINEAGE passes on."""

    name: str | None = None
    created: str | None = None  # local time, %Y-%m-%dT%H:%M:%S
    base: str | None = None  # the base model's name in the home that made it
    base_fingerprint: str | None = None  # models/fingerprint.py: which base it fits
    stage: str | None = None  # train/stages/; a merge of adapters of several stages: null
    method: str | None = None  # methods/
    rank: int | None = None  # LoRA rank (federated and merged cards)
    data: str | dict[str, Any] | None = None  # the dataset's name ({"name": ...} in old cards)
    data_fingerprint: str | None = None
    steps: int | None = None
    metrics: dict[str, float | None] | None = None  # the final losses (and accuracy)
    run_id: str | None = None  # the training run, runs/<run_id>/
    provenance: str | None = None  # local, federated, merged or evolved
    federated: Federated | None = None
    merge: Merged | None = None
    parents: list[AdapterCard] | None = None
    evolve: Evolved | None = None
    labels: list[str] | None = None  # classify: the classes, in the order of the outputs
    reward: str | None = None  # rl: the reward model it was trained against
    imported: Imported | None = None
    improved: Improved | None = None

    def trained_on(self) -> str | None:
        """The base's fingerprint; None when not recorded. ValueError when the card holds one
        that is not text (hand-edited): a fit check must refuse it, not skip it."""
        if "base_fingerprint" in self.extra:
            raise ValueError(f"base_fingerprint {self.extra['base_fingerprint']!r} is not text")
        return self.base_fingerprint

    @property
    def data_name(self) -> str | None:
        return self.data.get("name") if isinstance(self.data, dict) else self.data

    def lineage(self, name: str) -> AdapterCard:
        """This card's entry among a merged card's parents: `name` and LINEAGE's fields,
        with their nulls and odd values as this card has them."""
        return AdapterCard(
            name=name,
            **{key: getattr(self, key) for key in LINEAGE},
            extra={key: value for key, value in self.extra.items() if key in LINEAGE},
            nulls=self.nulls & set(LINEAGE),
        )

    @classmethod
    def read(cls, path: Path) -> AdapterCard:
        """The card in file `path`: OSError if it cannot be read, ValueError if it holds no
        JSON object."""
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path} holds no JSON object")
        return cls.from_dict(data)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


def _fields(cls: type) -> dict[str, str]:
    """{field name: its JSON key} of record class `cls`, in the order they are written."""
    return {
        f.name: f.metadata.get("key", f.name)
        for f in dataclasses.fields(cls)
        if f.name not in ("extra", "nulls")
    }


_HINTS: dict[type, dict[str, Any]] = {}  # resolving the annotations' strings takes a while


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _fits(value: Any, hint: Any) -> bool:
    """Whether JSON `value` is of type `hint` (an int is a float; a bool is no number)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arm) for arm in args)
    if origin is list:
        return isinstance(value, list) and all(_fits(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            isinstance(key, str) and _fits(item, args[1]) for key, item in value.items()
        )
    if hint is type(None):
        return value is None
    if isinstance(hint, type) and issubclass(hint, JsonRecord):
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _load(value: Any, hint: Any) -> Any:
    """JSON `value`, which fits `hint`, with its records read into their classes."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _load(value, next(arm for arm in args if _fits(value, arm)))
    if origin is list:
        return [_load(item, args[0]) for item in value]
    if origin is dict:
        return {key: _load(item, args[1]) for key, item in value.items()}
    if isinstance(hint, type) and issubclass(hint, JsonRecord):
        return hint.from_dict(value)
    return value


def _dump(value: Any) -> Any:
    if isinstance(value, JsonRecord):
        return value.to_dict()
    if isinstance(value, list):
        return [_dump(item) for item in value]
    if isinstance(value, dict):
        return {key: _dump(item) for key, item in value.items()}
    return value
