"""`/v1/memories`: what `tllm remember` and `tllm memories` do, over HTTP.

    POST   /v1/memories        {"text": "My dog is called Rex.", "teacher": true}  -> 201
    GET    /v1/memories        the memories, oldest first
    GET    /v1/memories/{id}   one, with the questions it is taught and tested with
    DELETE /v1/memories/{id}   forget it (the next `tllm improve` unlearns it)

The teacher that writes more questions is the served base model, through the engine the
server already holds (no second copy is loaded); `"teacher": false` keeps to the patterns.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ..learn.memories import MAX_CHARS, Memory, MemoryStore
from ..learn.remember import remember
from ..learn.teacher import engine_ask
from .errors import APIError
from .limits import require_key

router = APIRouter(dependencies=[Depends(require_key)])


class MemoryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(..., min_length=1, max_length=MAX_CHARS)
    teacher: bool = True


def _public(memory: Memory) -> dict:
    return {"object": "memory", **memory.to_dict()}


@router.post("/v1/memories", status_code=201)
async def add_memory(request: Request, body: MemoryRequest):
    state = request.app.state
    ask = engine_ask(state.engines.get(state.config.model)) if body.teacher else None
    memory = await run_in_threadpool(
        remember,
        state.home,
        body.text,
        None,
        ask=ask,
        source=f"teacher {state.config.model}",
    )
    return JSONResponse(_public(memory), status_code=201)


@router.get("/v1/memories")
async def list_memories(request: Request):
    found = await run_in_threadpool(MemoryStore(request.app.state.home).all)
    return {"object": "list", "data": [_public(m) for m in found]}


def _existing(request: Request, memory_id: str) -> tuple[MemoryStore, int]:
    """The store and the memory's id, or a 404 naming it."""
    store = MemoryStore(request.app.state.home)
    if not memory_id.isdigit() or not store.exists(memory_id):
        raise APIError(404, f"no memory {memory_id!r}", param="id")
    return store, int(memory_id)


@router.get("/v1/memories/{memory_id}")
async def get_memory(request: Request, memory_id: str):
    store, number = _existing(request, memory_id)
    return _public(store.get(number))


@router.delete("/v1/memories/{memory_id}")
async def forget_memory(request: Request, memory_id: str):
    store, number = _existing(request, memory_id)
    store.forget(number)
    return {"object": "memory.deleted", "id": number, "deleted": True}
