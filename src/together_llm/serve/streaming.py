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
from collections.abc import AsyncIterator

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


def usage_of(completions) -> dict:
    """OpenAI's `usage` of `n` answers to one prompt: the prompt counted once."""
    prompt = completions[0].usage.prompt_tokens
    generated = sum(c.usage.completion_tokens for c in completions)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": generated,
        "total_tokens": prompt + generated,
    }


def event_stream(chunks: AsyncIterator[str], metrics):
    """A server-sent event response of `chunks` (`sse` events). An error after the headers
    went out can only be told in the stream; the request leaves the in-flight gauge however
    it ends, and a stream that ends well ends with [DONE]."""
    from fastapi.responses import StreamingResponse

    async def events():
        metrics.in_flight.inc()
        try:
            async for chunk in chunks:
                yield chunk
        except Exception as exc:
            yield sse(
                {
                    "error": {
                        "message": str(exc),
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                }
            )
        finally:
            metrics.in_flight.dec()
            await chunks.aclose()  # a reader that hung up: its generation is cancelled now
        yield sse("[DONE]")

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
