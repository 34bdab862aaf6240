"""Adapters per request: the `adapter_scale` and `lora` body fields, and llama.cpp's
`GET /lora-adapters`, which numbers the adapters a `lora` entry may name by `id`.

    {"model": "me", "adapter_scale": 0.5, ...}            # adapter "me" at half strength
    {"model": "me", "lora": [{"id": "style", "scale": 0.7}]}   # "me" at 1, plus "style"
    {"lora": [{"id": 0, "scale": 1.0}]}                   # llama.cpp's form: by number

A request's adapters are `model`'s (the assistant's active adapters by default) at
`adapter_scale` (1 when not given); `lora` entries set the scale of the adapters they
name, adding those not there yet. They are served from the base model already loaded
(engines.py); a name, number or scale that does not fit is a 400 naming the field.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from ..adapters.store import list_adapters
from ..engine.protocol import Engine
from .errors import APIError
from .limits import require_key

router = APIRouter(dependencies=[Depends(require_key)])


@router.get("/lora-adapters")
async def lora_adapters(request: Request):
    """Every adapter of the home, numbered, with the scale it has when a request does not
    set one (1 for the assistant's active adapters, 0 for the others)."""
    home, active = request.app.state.home, request.app.state.config.adapters
    names = await run_in_threadpool(list_adapters, home)
    return [
        {
            "id": number,
            "name": name,
            "path": str(home.adapters_dir / name),
            "scale": 1.0 if name in active else 0.0,
        }
        for number, name in enumerate(names)
    ]


def strengths(request: Request, body) -> dict[str, float] | None:
    """The `lora` field as {adapter name: scale}, numbers read as GET /lora-adapters lists."""
    if body.lora is None:
        return None
    names = list_adapters(request.app.state.home)
    chosen: dict[str, float] = {}
    for entry in body.lora:
        if isinstance(entry.id, int):
            if not 0 <= entry.id < len(names):
                raise APIError(
                    400,
                    f"lora id {entry.id} is not an adapter; GET /lora-adapters numbers "
                    f"{len(names)} (0 to {len(names) - 1})",
                    param="lora",
                )
            name = names[entry.id]
        else:
            name = entry.id
        if name in chosen:
            raise APIError(400, f"lora names adapter {name!r} twice", param="lora")
        chosen[name] = entry.scale
    return chosen


async def engine_for(request: Request, body) -> Engine:
    """The engine for the request's `model`, with its adapters at the strengths it asks."""
    pool = request.app.state.engines
    chosen = strengths(request, body)
    return await run_in_threadpool(pool.get, body.model, body.adapter_scale, chosen)
