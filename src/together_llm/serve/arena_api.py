"""The arena for people: `/v1/arena/battles` shows two anonymous answers to a prompt,
`/v1/arena/votes` takes a person's verdict and reveals who was who, and
`/v1/arena/leaderboard` rates every stored battle (people's and judges' alike).

`ServedArena` does the work and the web chat's Arena tab calls it directly, so the API and
the web agree by construction. Contestants are the names this server answers to (models of
the registry, adapters of the home: the same engine pool as the chat routes), plus any
`home:PATH[:ADAPTER]` contestant already in the stored battles. Other homes join from the
command line (`tllm arena -c ...`): a web request never opens a folder nobody put there.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ..adapters.store import list_adapters
from ..assistant.answer import Assistant
from ..errors import TllmError
from ..evaluate.arena import (
    HOME_PREFIX,
    EngineContestant,
    canonical_name,
    leaderboard,
    open_contestant,
    open_human_battle,
    record_vote,
)
from ..evaluate.battles import BattleStore
from .errors import APIError
from .limits import require_key

MAX_PROMPT_CHARS = 32_000  # far past any context we serve; the engine then checks tokens
MAX_BOOTSTRAP = 1000


class BattleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(..., min_length=1, max_length=MAX_PROMPT_CHARS)
    # two names; left out: the assistant's base model against its adapter(s)
    contestants: list[str] | None = Field(None, min_length=2, max_length=2)
    max_tokens: int | None = Field(None, ge=1)


class VoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    battle: int = Field(..., ge=1)
    vote: Literal["a", "b", "tie"]  # "a": the first answer shown was better


class ServedArena:
    """Battles between the answers of a running server's contestants, and people's votes."""

    def __init__(self, assistant: Assistant, pool, rng: random.Random | None = None):
        self.assistant, self.pool = assistant, pool  # the served contestants answer through it
        self.home, self.config = assistant.home, assistant.config
        self.store = BattleStore.of(self.home)
        self.rng = rng or random.Random()
        self._others: dict = {}  # home:PATH contestants' engines, opened once
        self._lock = threading.Lock()

    # --- who may fight ---------------------------------------------------------------------

    def choices(self) -> list[str]:
        """Every contestant a person may name: the served models and adapters, then the
        other homes already in the stored battles."""
        served = self.served()
        stored = sorted(
            {
                name
                for battle in self.store.list()
                for name in (battle.model_a, battle.model_b)
                if name.startswith(HOME_PREFIX)
            }
        )
        return served + [name for name in stored if name not in served]

    def served(self) -> list[str]:
        """The served models and adapters by their own names: a battle records what
        fought, and the assistant's name means another version after each improve."""
        return [name for name in self.pool.names() if not self.pool.is_assistant(name)]

    def default_pair(self) -> list[str]:
        """The question a person teaching the assistant asks: is it better with its adapter?
        So the base model against an active adapter (or, none being active, any adapter)."""

        adapters = list(self.config.adapters) or list_adapters(self.home)
        if not adapters:
            raise APIError(
                400,
                f"name two contestants: this home has only its base model "
                f"{self.config.model!r}, no adapter to set against it; "
                f"contestants: {', '.join(self.choices())}",
                param="contestants",
            )
        return self.rng.sample([self.config.model, self.rng.choice(adapters)], 2)

    def _contestant(self, name: str, max_tokens: int | None) -> EngineContestant:
        if name in self.served():
            return EngineContestant(self.assistant, self.pool.get(name), max_tokens, seed=None)
        if name.startswith(HOME_PREFIX) and self.store.list(contestant=name):
            with self._lock:  # open each other home's model once, however many ask at once
                return open_contestant(self.home, name, max_tokens, engines=self._others)
        raise APIError(
            404,
            f"unknown contestant {name!r}; contestants: {', '.join(self.choices())} "
            "(other homes join with `tllm arena -c home:PATH,...`)",
            param="contestants",
            code="contestant_not_found",
        )

    # --- what the API and the web tab do ------------------------------------------------------

    def battle(
        self, prompt: str, contestants: list[str] | None = None, max_tokens: int | None = None
    ) -> dict:
        """Both contestants answer `prompt` (side by side); the battle is stored in random
        order, waiting for a vote. Returns what the voter may see: no names."""
        if not prompt.strip():
            raise APIError(400, "the prompt is empty", param="prompt")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise APIError(
                400,
                f"the prompt is {len(prompt)} characters; at most {MAX_PROMPT_CHARS}",
                param="prompt",
            )
        names = [canonical_name(n) for n in contestants] if contestants else self.default_pair()
        if len(names) != 2 or names[0] == names[1]:
            raise APIError(400, "a battle needs two different contestants", param="contestants")
        players = [self._contestant(name, max_tokens) for name in names]  # all checked, then answer
        with ThreadPoolExecutor(max_workers=2) as workers:  # a batching engine decodes both at once
            answers = list(workers.map(lambda player: player(prompt), players))
        battle = open_human_battle(self.store, prompt, dict(zip(names, answers)), self.rng)
        shown = battle.anonymous()
        return {
            "id": shown["id"],
            "object": "arena.battle",
            "prompt": shown["prompt"],
            "answers": [shown["answer_a"], shown["answer_b"]],
        }

    def vote(self, battle_id: int, verdict: str) -> dict:
        """A person's verdict on a pending battle; reveals both names."""
        if verdict not in ("a", "b", "tie"):
            raise APIError(400, f"unknown vote {verdict!r}: use a, b or tie", param="vote")
        try:
            self.store.get(battle_id)
        except TllmError as exc:
            raise APIError(404, str(exc), param="battle", code="battle_not_found") from None
        try:
            battle = record_vote(self.store, battle_id, verdict)
        except TllmError as exc:  # the only refusal left: somebody voted first
            raise APIError(409, str(exc), param="battle", code="already_voted") from None
        winner = {"a": battle.model_a, "b": battle.model_b}.get(verdict)
        return {
            "id": battle.id,
            "object": "arena.vote",
            "vote": verdict,
            "contestants": [battle.model_a, battle.model_b],
            "winner": winner,
        }

    def ratings(self, bootstrap: int = 200) -> list[dict]:
        """The leaderboard, best first; empty before the first decided battle."""
        if not self.store.outcomes():
            return []
        return [rating.to_dict() for rating in leaderboard(self.store, bootstrap)]


_creating = threading.Lock()


def arena_of(app: FastAPI) -> ServedArena:
    """The app's arena, made on first use from its home, config and engine pool."""
    with _creating:
        if getattr(app.state, "arena", None) is None:
            app.state.arena = ServedArena(app.state.assistant, app.state.engines)
        return app.state.arena


router = APIRouter(prefix="/v1/arena", dependencies=[Depends(require_key)])


@router.post("/battles")
async def create_battle(body: BattleRequest, request: Request):
    arena = arena_of(request.app)
    return await run_in_threadpool(arena.battle, body.prompt, body.contestants, body.max_tokens)


@router.post("/votes")
async def vote(body: VoteRequest, request: Request):
    return await run_in_threadpool(arena_of(request.app).vote, body.battle, body.vote)


@router.get("/leaderboard")
async def ratings(request: Request, bootstrap: int = Query(200, ge=0, le=MAX_BOOTSTRAP)):
    data = await run_in_threadpool(arena_of(request.app).ratings, bootstrap)
    return {"object": "list", "data": data}
