"""What a caller hands the batch scheduler (scheduler.py) and what it reads back: a
`Request` (prompt, sampler chain, adapters) and its tokens as a `TokenStream`."""

from __future__ import annotations

import queue

DONE = object()  # put on a request's queue after its last token


class Request:
    def __init__(
        self,
        prompt: list[int],
        chain,
        max_tokens: int,
        reuse: bool = True,
        logprobs: int | None = None,
        loras: tuple[tuple[int, float], ...] = (),
    ):
        self.prompt = prompt
        # (llama_adapter_lora pointer, scale) of the adapters this request is decoded with
        self.loras = loras
        self.logprobs = logprobs  # None, or how many alternatives to report with each token
        self.prompt_scores: list | None = None  # [] asks for each prompt token's logprob
        # A seeded request evaluates its whole prompt: a reused prefix changes the chunking,
        # and with it the rounding, so the same seed could give a different answer.
        self.reuse = reuse
        self.chain = chain  # llama_sampler chain; freed by the scheduler when the request ends
        self.max_tokens = max_tokens
        self.out: queue.SimpleQueue = queue.SimpleQueue()  # token ids, then DONE or an error
        self.cancelled = False


class TokenStream:
    """A request's tokens as the scheduler hands them over. `close()` (the reader stopped)
    and `cancel()` (from any thread) both mark the request cancelled: the scheduler frees
    its slot at the next step, or drops it from the queue, and then ends the stream."""

    def __init__(self, request: Request):
        self.request = request

    def __iter__(self):
        return self

    def __next__(self):
        item = self.request.out.get()
        if item is DONE:
            self.request.out.put(DONE)  # later calls end too
            raise StopIteration
        if isinstance(item, BaseException):
            self.request.cancelled = True
            raise item
        return item

    def cancel(self) -> None:
        self.request.cancelled = True

    close = cancel
