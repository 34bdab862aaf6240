"""The arena's battles, stored in the home (`arena/battles.sqlite`) so ratings can be
recomputed at any time and new contestants join later by simply adding battles.

One row per battle: the prompt, the two contestants' real names and answers in the order
they were shown (`a` first), the verdict ("a", "b" or "tie"), who gave it (a judge's name
or "human") and the round. A battle waiting for a person's vote (the web chat's arena
view) has no verdict yet; `vote` settles it exactly once, even when two votes race.
"""

from __future__ import annotations

import builtins
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import TllmError
from ..home import Home

VERDICTS = ("a", "b", "tie")
HUMAN = "human"

SCHEMA = """
CREATE TABLE IF NOT EXISTS battles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    prompt TEXT NOT NULL,
    model_a TEXT NOT NULL,
    model_b TEXT NOT NULL,
    answer_a TEXT NOT NULL,
    answer_b TEXT NOT NULL,
    verdict TEXT CHECK (verdict IS NULL OR verdict IN ('a', 'b', 'tie')),
    judge TEXT,
    round INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS battles_models ON battles (model_a, model_b);
"""
COLUMNS = (
    "id",
    "time",
    "prompt",
    "model_a",
    "model_b",
    "answer_a",
    "answer_b",
    "verdict",
    "judge",
    "round",
)


@dataclass
class Battle:
    id: int
    time: float
    prompt: str
    model_a: str  # shown first
    model_b: str
    answer_a: str
    answer_b: str
    verdict: str | None  # "a", "b", "tie"; None while it waits for a vote
    judge: str | None  # the judge's name, or "human"
    round: int

    def to_dict(self) -> dict:
        return asdict(self)

    def anonymous(self) -> dict:
        """What a voter may see before voting: no contestant names."""
        return {
            "id": self.id,
            "prompt": self.prompt,
            "answer_a": self.answer_a,
            "answer_b": self.answer_b,
        }


class BattleStore:
    """The battles of one home."""

    def __init__(self, path: Path):
        self.path = path
        self._ready = False  # the schema exists

    @classmethod
    def of(cls, home: Home) -> BattleStore:
        return cls(home.arena_dir / "battles.sqlite")

    @contextmanager
    def _db(self):
        """A connection for one operation, committed on success (safe across threads)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=30)) as db:
                if not self._ready:
                    db.executescript(SCHEMA)
                    self._ready = True
                with db:
                    yield db
        except sqlite3.DatabaseError as exc:
            raise TllmError(f"the battle store {self.path} cannot be used: {exc}") from None

    def add(
        self,
        prompt: str,
        model_a: str,
        model_b: str,
        answer_a: str,
        answer_b: str,
        verdict: str | None = None,
        judge: str | None = None,
        round: int = 0,
    ) -> Battle:
        """Store a battle; without a verdict it waits for `vote`."""
        if model_a == model_b:
            raise TllmError(f"a battle needs two different contestants, not {model_a!r} twice")
        _check_verdict(verdict, allow_none=True)
        if (verdict is None) != (judge is None):
            raise TllmError("a verdict and who gave it go together")
        row = (
            time.time(),
            prompt,
            model_a,
            model_b,
            answer_a,
            answer_b,
            verdict,
            judge,
            int(round),
        )
        with self._db() as db:
            cursor = db.execute(
                "INSERT INTO battles (time, prompt, model_a, model_b, answer_a, answer_b, "
                "verdict, judge, round) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return Battle(cursor.lastrowid, *row)

    def get(self, battle_id: int) -> Battle:
        with self._db() as db:
            row = db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM battles WHERE id = ?", (int(battle_id),)
            ).fetchone()
        if row is None:
            raise TllmError(f"no battle {battle_id} in the arena")
        return Battle(*row)

    def list(self, contestant: str | None = None, pending: bool | None = None) -> list[Battle]:
        """Battles in the order they were stored; only those of `contestant`, and only the
        undecided (pending=True) or decided (pending=False) ones, when asked."""
        where, args = [], []
        if contestant is not None:
            where.append("(model_a = ? OR model_b = ?)")
            args += [contestant, contestant]
        if pending is not None:
            where.append("verdict IS NULL" if pending else "verdict IS NOT NULL")
        query = f"SELECT {', '.join(COLUMNS)} FROM battles"
        if where:
            query += " WHERE " + " AND ".join(where)
        with self._db() as db:
            return [Battle(*row) for row in db.execute(query + " ORDER BY id", args)]

    # builtins.list: in the class body, `list` is the method above
    def outcomes(self, judges: Iterable[str] | None = None) -> builtins.list[tuple[str, str, str]]:
        """(model_a, model_b, verdict) of every decided battle, or of those decided by
        `judges`: what the ratings are fitted on."""
        query = "SELECT model_a, model_b, verdict FROM battles WHERE verdict IS NOT NULL"
        args = list(judges) if judges is not None else []
        if judges is not None:
            query += f" AND judge IN ({', '.join('?' * len(args))})"
        with self._db() as db:
            return list(db.execute(query + " ORDER BY id", args))

    def vote(self, battle_id: int, verdict: str, judge: str = HUMAN) -> Battle:
        """Settle a pending battle; refused if it is unknown or already decided."""
        _check_verdict(verdict)
        with self._db() as db:
            # The condition on verdict makes the check and the write one step: of two
            # racing votes, exactly one changes the row.
            changed = db.execute(
                "UPDATE battles SET verdict = ?, judge = ? WHERE id = ? AND verdict IS NULL",
                (verdict, judge, int(battle_id)),
            ).rowcount
        if not changed:
            battle = self.get(battle_id)  # refuses unknown ids
            raise TllmError(
                f"battle {battle.id} was already decided ({battle.verdict!r} by {battle.judge})"
            )
        return self.get(battle_id)


def _check_verdict(verdict, allow_none: bool = False) -> None:
    if verdict is None and allow_none:
        return
    if verdict not in VERDICTS:
        raise TllmError(f"unknown verdict {verdict!r}: use one of {', '.join(VERDICTS)}")
