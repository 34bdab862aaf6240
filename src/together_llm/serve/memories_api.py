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


def remember_served(state, text: str, teacher: bool = True) -> Memory:
    """`tllm remember` for the server (this route and the studio): the served base model
    writes the teacher's questions, through the engine the server already holds."""
    model = state.config.model
    ask = engine_ask(state.engines.get(model)) if teacher else None
    return remember(state.home, text, None, ask=ask, source=f"teacher {model}")


@router.post("/v1/memories", status_code=201)
async def add_memory(request: Request, body: MemoryRequest):
    memory = await run_in_threadpool(remember_served, request.app.state, body.text, body.teacher)
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
