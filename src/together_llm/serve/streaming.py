"""Running a blocking `Generation` for an async server, and server-sent events.

Each generation is iterated in its own worker thread, which hands pieces to the event loop
through an asyncio queue; when the client goes away the async side stops, and the worker
closes the generation at its next piece, which cancels decoding and frees its slot; a
request still waiting for a slot is withdrawn from the queue at once (`Generation.cancel`).
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import AsyncIterator

from ..engine.protocol import Generation


async def pieces(generation: Generation, on_cancel=None) -> AsyncIterator[str]:
    """The text pieces of `generation`, produced in a worker thread; `on_cancel()` runs
    there once decoding has been cancelled because the reader went away."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    abandoned = threading.Event()

    def put(kind, value):
        loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def work():
        stream = iter(generation)
        try:
            for piece in stream:
                if abandoned.is_set():
                    break
                put("piece", piece)
            put("done", None)
        except BaseException as exc:  # re-raised on the async side
            put("error", exc)
        finally:
            stream.close()  # cancels decoding if we stopped early
            if generation.completion is None and on_cancel is not None:
                on_cancel()

    threading.Thread(target=work, daemon=True, name="generation").start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "piece":
                yield value
            elif kind == "done":
                return
            else:
                raise value
    finally:
        abandoned.set()
        if generation.completion is None:
            generation.cancel()  # the reader is gone: a queued request leaves the queue now


def sse(data) -> str:
    """One server-sent event carrying `data` as JSON (or the literal [DONE])."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {payload}\n\n"
