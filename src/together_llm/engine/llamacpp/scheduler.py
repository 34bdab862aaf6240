"""The continuous-batching scheduler behind `BatchedLlamaCppEngine` (batch.py).

One background thread owns a llama.cpp context with `slots` sequences. Requests arrive on
a queue; each step puts, for every busy slot, its last sampled token or the next chunk of
its prompt into one batch, decodes it once, samples each slot's next token with that
request's own sampler chain and hands it to the request's queue. A request waits while
every slot is busy.

The KV cache is split per sequence (`kv_unified = False`, `n_ctx = slots x
context_length`): each slot owns `context_length` cells, and a sequence's numbers do not
depend on what else is in the batch (with a unified cache they do: the attention then
spans every sequence's cells), so a greedy answer is the same alone or among others, and
the same as `LlamaCppEngine`'s. A slot keeps its tokens' KV after its request ends, for
the next request that shares a prefix (a chat's next turn); its cells are its own, so this
costs the other slots nothing.
"""

from __future__ import annotations

import ctypes
import queue
import threading
from collections import deque

from ...errors import EngineError, TllmError

DONE = object()  # put on a request's queue after its last token


class Request:
    def __init__(
        self,
        prompt: list[int],
        chain,
        max_tokens: int,
        reuse: bool = True,
        logprobs: int | None = None,
    ):
        self.prompt = prompt
        self.logprobs = logprobs  # None, or how many alternatives to report with each token
        self.prompt_scores: list | None = None  # [] asks for each prompt token's logprob
        # A seeded request evaluates its whole prompt: a reused prefix changes the chunking,
        # and with it the rounding, so the same seed could give a different answer.
        self.reuse = reuse
        self.chain = chain  # llama_sampler chain; freed by the scheduler when the request ends
        self.max_tokens = max_tokens
        self.out: queue.SimpleQueue = queue.SimpleQueue()  # token ids, then DONE or an error
        self.cancelled = False


class _Slot:
    def __init__(self, seq_id: int):
        self.seq_id = seq_id
        self.request: Request | None = None
        self.cached: list[int] = []  # tokens whose KV this sequence holds, in position order
        self.todo: list[int] = []  # tokens still to decode: the prompt's rest or the last sample
        self.generated = 0
        self.prefilled = False  # the whole prompt has been decoded
        self.used = 0  # when it was last given a request (least recently used goes first)


def _common(a: list[int], b: list[int]) -> int:
    """Length of the common prefix."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


class BatchScheduler:
    """Owns the llama.cpp context; `submit` is thread-safe, everything else runs in the
    scheduler's thread."""

    def __init__(
        self,
        model,
        context_params,
        slots: int,
        context_length: int,
        n_batch: int,
        prefill_chunk: int = 128,
        lora=None,
        lora_scale: float = 1.0,
    ):
        """`lora`: a loaded llama.cpp LoRA adapter (the parent `Llama`'s); adapters belong to a
        context, so ours must be given it too."""
        import llama_cpp as L
        from llama_cpp import _internals

        if not 1 <= slots <= L.llama_max_parallel_sequences():
            raise TllmError(f"slots must be between 1 and {L.llama_max_parallel_sequences()}")
        self._L = L
        params = L.llama_context_params.from_buffer_copy(
            context_params
        )  # same threads, same attention
        params.n_ctx = slots * context_length
        params.n_seq_max = slots
        params.kv_unified = False
        n_batch = max(n_batch, slots)  # room for every slot's token in one step
        params.n_batch = n_batch
        params.n_ubatch = max(params.n_ubatch, slots)
        self._context = _internals.LlamaContext(model=model, params=params, verbose=False)
        self._ctx = self._context.ctx
        if lora is not None:
            adapters = (L.llama_adapter_lora_p_ctypes * 1)(lora)
            if L.llama_set_adapters_lora(self._ctx, adapters, 1, (ctypes.c_float * 1)(lora_scale)):
                self._context.close()
                raise TllmError("llama.cpp could not apply the LoRA adapter to the batch context")
        self._mem = L.llama_get_memory(self._ctx)
        self.n_ctx_seq = L.llama_n_ctx_seq(self._ctx)
        self._vocab = model.vocab
        self._n_batch = n_batch
        self._prefill_chunk = max(1, min(prefill_chunk, n_batch))
        self._batch_owner = _internals.LlamaBatch(
            n_tokens=n_batch, embd=0, n_seq_max=1, verbose=False
        )
        self._batch = self._batch_owner.batch
        b = self._batch  # the arrays stay put; reading them from the struct costs each time
        self._arrays = (b.token, b.pos, b.n_seq_id, b.seq_id, b.logits)
        self._slots = [_Slot(i) for i in range(slots)]
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: deque[Request] = deque()
        self._clock = 0
        self._closed = False
        self._lock = threading.Lock()
        self._threads: tuple[int, int] | None = None
        # prefix_reused: prompt tokens whose KV a slot already held
        self.stats = {
            "decode_calls": 0,
            "max_seqs_per_decode": 0,
            "tokens_decoded": 0,
            "tokens_sampled": 0,
            "prefix_reused": 0,
        }
        self._thread = threading.Thread(target=self._run, name="llama.cpp-batch", daemon=True)
        self._thread.start()

    # --- caller side ------------------------------------------------------------------
    def submit(self, request: Request) -> None:
        with self._lock:
            if self._closed:
                raise TllmError("the engine is closed")
            self._inbox.put(request)

    def set_threads(self, n_threads: int, n_threads_batch: int) -> None:
        """Threads for one-token steps and for bigger ones, from the next step on."""
        self._threads = (n_threads, n_threads_batch)

    @property
    def busy_slots(self) -> int:
        return sum(s.request is not None for s in self._slots)

    @property
    def queue_depth(self) -> int:
        return len(self._waiting) + self._inbox.qsize()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._inbox.put(None)
        self._thread.join()
        self._batch_owner.close()
        self._context.close()

    # --- scheduler thread -------------------------------------------------------------
    def _run(self) -> None:
        while True:
            idle = not self._waiting and all(s.request is None for s in self._slots)
            item = self._waiting  # anything but None
            try:
                item = self._inbox.get(block=idle)
                while item is not None:
                    self._waiting.append(item)
                    item = self._inbox.get_nowait()
            except queue.Empty:
                pass
            if item is None:  # close(): nothing is submitted after it
                break
            try:
                self._admit()
                if any(s.request is not None for s in self._slots):
                    self._step()
            except Exception as exc:  # a bug or a llama.cpp failure: fail what is in flight
                for slot in self._slots:
                    if slot.request is not None:
                        self._release(slot, EngineError(f"llama.cpp batch failed: {exc}"))
        error = EngineError("the engine was closed while this request was running")
        for slot in self._slots:
            if slot.request is not None:
                self._release(slot, error)
        while self._waiting:
            self._end(self._waiting.popleft(), error)

    def _end(self, request: Request, outcome=DONE) -> None:
        self._L.llama_sampler_free(request.chain)
        request.chain = None
        request.out.put(outcome)

    def _release(self, slot: _Slot, outcome=DONE, last: int | None = None) -> None:
        """Free the slot, then send `last` (the final token) and the outcome, so that a
        caller who has its answer finds the slot free."""
        request = slot.request
        if request is None:
            return  # free already
        slot.request, slot.todo = None, []
        if outcome is not DONE:  # the KV may be half written: forget it
            self._L.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
            slot.cached = []
        if last is not None:
            request.out.put(last)
        self._end(request, outcome)

    def _admit(self) -> None:
        for slot in self._slots:
            if slot.request is not None and slot.request.cancelled:
                self._release(slot)
        if any(r.cancelled for r in self._waiting):  # withdrawn while queued, anywhere in line
            for request in [r for r in self._waiting if r.cancelled]:
                self._waiting.remove(request)
                self._end(request)
        while self._waiting:
            request = self._waiting[0]
            free = [s for s in self._slots if s.request is None]
            if not free:
                return
            self._waiting.popleft()
            slot = max(free, key=lambda s: (_common(s.cached, request.prompt), -s.used))
            keep = min(_common(slot.cached, request.prompt), len(request.prompt) - 1)
            keep = keep if request.reuse else 0
            if not self._L.llama_memory_seq_rm(self._mem, slot.seq_id, keep, -1):
                self._L.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
                keep = 0
            self._clock += 1
            slot.request, slot.used, slot.generated, slot.prefilled = request, self._clock, 0, False
            slot.cached = request.prompt[:keep]
            slot.todo = request.prompt[keep:]
            self.stats["prefix_reused"] += keep

    def _step(self) -> None:
        L, b = self._L, self._batch
        token, pos, n_seq_id, seq_id, logits = self._arrays
        # (slot, its request) of the busy slots
        active = [(s, s.request) for s in self._slots if s.request is not None]
        decoding = [(s, r) for s, r in active if s.prefilled]
        # Alone, a prompt goes in chunks of n_batch, as llama-cpp-python does; beside answers
        # being decoded, in smaller chunks so that they keep flowing.
        chunk = self._prefill_chunk if decoding else self._n_batch
        fed: list[tuple[_Slot, int]] = []  # (slot, how many of its todo tokens)
        # (slot, request, batch index of its logits)
        outputs: list[tuple[_Slot, Request, int]] = []
        # (request, batch index, position) of prompt tokens whose logprobs are echoed
        scored: list[tuple[Request, int, int]] = []
        n = 0
        for slot, request in decoding + [(s, r) for s, r in active if not s.prefilled]:
            take = min(len(slot.todo), self._n_batch - n, chunk if not slot.prefilled else 1)
            if take <= 0:
                continue
            start = len(slot.cached)
            score = request.prompt_scores is not None and not slot.prefilled
            for i in range(take):
                token[n] = slot.todo[i]
                pos[n] = start + i
                n_seq_id[n] = 1
                seq_id[n][0] = slot.seq_id
                logits[n] = score  # scoring a prompt needs every position's distribution
                if score:
                    scored.append((request, n, start + i))
                n += 1
            if take == len(slot.todo):
                logits[n - 1] = True
                outputs.append((slot, request, n - 1))
            fed.append((slot, take))
        b.n_tokens = n
        if n == 0:  # nothing to feed: a request with an empty prompt; never spin on it
            for slot, _ in active:
                if not slot.todo:
                    self._release(slot, TllmError("nothing to decode (empty prompt)"))
            return
        if self._threads:
            L.llama_set_n_threads(self._ctx, *self._threads)
            self._threads = None
        code = L.llama_decode(self._ctx, b)
        if code != 0:
            for slot, _ in fed:
                self._release(slot, EngineError(f"llama_decode failed ({code})"))
            return
        for request, row, at in scored:
            scores = request.prompt_scores  # a list: a prompt is scored only then
            if scores is not None and at + 1 < len(request.prompt):
                following = request.prompt[at + 1]
                scores.append((following, *self._logprobs(row, following, request.logprobs or 0)))
        stats = self.stats
        stats["decode_calls"] += 1
        stats["max_seqs_per_decode"] = max(stats["max_seqs_per_decode"], len(fed))
        stats["tokens_decoded"] += n
        for slot, take in fed:
            slot.cached.extend(slot.todo[:take])
            del slot.todo[:take]
        for slot, request, index in outputs:
            sampled = L.llama_sampler_sample(request.chain, self._ctx, index)
            if request.logprobs is not None:
                sampled = (sampled, *self._logprobs(index, sampled, request.logprobs))
            slot.generated += 1
            slot.prefilled = True
            stats["tokens_sampled"] += 1
            token = sampled if isinstance(sampled, int) else sampled[0]
            if (
                slot.generated >= request.max_tokens
                or L.llama_vocab_is_eog(self._vocab, token)
                or len(slot.cached) >= self.n_ctx_seq
            ):
                self._release(slot, last=sampled)
            else:
                slot.todo = [token]
                request.out.put(sampled)

    def _logprobs(self, row: int, token: int, k: int):
        """log p(token) under the model at batch row `row`, and the k likeliest tokens."""
        import numpy as np

        n_vocab = self._L.llama_vocab_n_tokens(self._vocab)
        logits = np.ctypeslib.as_array(
            self._L.llama_get_logits_ith(self._ctx, row), shape=(n_vocab,)
        ).astype(np.float64)
        top = logits.max()
        norm = top + np.log(np.exp(logits - top).sum())  # log-sum-exp: logprobs = logits - norm
        best = np.argpartition(-logits, k)[:k] if k else np.array([], dtype=int)
        best = best[np.argsort(-logits[best])]
        return float(logits[token] - norm), [(int(i), float(logits[i] - norm)) for i in best]


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
