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

Adapters share the context: each request names the LoRA adapters (and their scales) it is
decoded with. With our llama.cpp patch (lora_seq.py) each sequence gets its own adapters, so
a step is still one call; a llama.cpp without it applies a context's adapter set to every
sequence of a `llama_decode` call, and a step then decodes its busy slots in one call per
distinct set. The model's weights and the KV cache are there once, whatever the number of
adapters: an adapter adds only its own tensors. A slot
keeps the KV of its last request for reuse only by a request with the same adapter set.
Adapters are loaded and freed in the scheduler's thread (`call`, `forget`), never under a
decode, and one is freed only when no request uses it any more.
"""

from __future__ import annotations

import ctypes
import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

from ...errors import EngineError, TllmError
from .lora_seq import PerSequenceLoras
from .requests import DONE, Request


class _Slot:
    def __init__(self, seq_id: int):
        self.seq_id = seq_id
        self.request: Request | None = None
        self.cached: list[int] = []  # tokens whose KV this sequence holds, in position order
        self.todo: list[int] = []  # tokens still to decode: the prompt's rest or the last sample
        self.generated = 0
        self.prefilled = False  # the whole prompt has been decoded
        self.used = 0  # when it was last given a request (least recently used goes first)
        self.loras: tuple[tuple[int, float], ...] = ()  # the adapter set `cached` was made with


def _common(a: list[int], b: list[int]) -> int:
    """Length of the common prefix."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def address(pointer) -> int:
    """A llama.cpp pointer as the int we compare, hash and hand back (`_pointer`)."""
    return ctypes.cast(pointer, ctypes.c_void_p).value or 0


def _pointer(L, lora: int):
    return ctypes.cast(lora, L.llama_adapter_lora_p_ctypes)


def _reusable(slot: _Slot, request: Request) -> int:
    """How many of the request's prompt tokens the slot's cached KV serves: KV made under
    other adapters is not the request's."""
    return _common(slot.cached, request.prompt) if slot.loras == request.loras else 0


class _Job:
    """Work for the scheduler's thread (loading an adapter), with the caller's future."""

    def __init__(self, work: Callable):
        self.work = work
        self.future: Future = Future()


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
    ):
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
        self._loras: tuple[tuple[int, float], ...] = ()  # the context's adapter set now
        self._per_seq = PerSequenceLoras(L, self._ctx, slots)  # or a call per adapter set
        self._forgetting: set[int] = set()  # adapters to free once no request uses them
        self._freed: set[int] = set()  # freed adapters: a request naming one is refused
        self._mem = L.llama_get_memory(self._ctx)
        self.n_ctx_seq = L.llama_n_ctx_seq(self._ctx)
        self._model, self._vocab = model, model.vocab
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
            "max_adapter_sets_per_decode": 0,  # 1 unless llama.cpp has per-sequence LoRA
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

    def call(self, work: Callable):
        """`work()` run in the scheduler's thread between steps (loading an adapter on the
        model while it decodes is not safe); its result, or its exception raised here."""
        job = _Job(work)
        self.submit(job)  # type: ignore[arg-type]
        return job.future.result()

    def load(self, path: str) -> int:
        """Load the GGUF LoRA at `path` on the model: its llama_adapter_lora pointer."""

        def work() -> int:
            lora = address(self._L.llama_adapter_lora_init(self._model.model, path.encode()))
            if not lora:
                raise TllmError(f"llama.cpp could not load the adapter {path}")
            self._freed.discard(lora)  # an address freed before may come back
            return lora

        return self.call(work)

    def forget(self, lora: int) -> None:
        """Free the adapter `lora` once no running or waiting request uses it."""
        self.submit(_Job(lambda: self._forgetting.add(lora)))  # type: ignore[arg-type]

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
                    if isinstance(item, _Job):
                        self._do(item)
                    else:
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
                if self._forgetting:
                    self._free_unused()
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

    def _do(self, job: _Job) -> None:
        try:
            job.future.set_result(job.work())
        except BaseException as exc:  # handed to the caller
            job.future.set_exception(exc)

    def _free_unused(self) -> None:
        """Free the adapters asked to be forgotten that no request uses now, and drop the
        KV that slots made with them."""
        requests = [s.request for s in self._slots if s.request] + list(self._waiting)
        used = {lora for r in requests for lora, _ in r.loras}
        for lora in self._forgetting - used:
            for slot in self._slots:
                if any(lora == other for other, _ in slot.loras):
                    self._L.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
                    slot.cached, slot.loras = [], ()
            if any(lora == other for other, _ in self._loras):
                self._use(())
            if lora in self._per_seq.adapters:
                self._per_seq.apply({})
            self._L.llama_adapter_lora_free(_pointer(self._L, lora))
            self._freed.add(lora)
        self._forgetting &= used

    def _use(self, loras: tuple[tuple[int, float], ...]) -> bool:
        """Make `loras` the context's adapter set (False when llama.cpp refuses)."""
        if loras == self._loras:
            return True
        L, n = self._L, len(loras)
        adapters = (L.llama_adapter_lora_p_ctypes * n)(*(_pointer(L, lora) for lora, _ in loras))
        scales = (ctypes.c_float * n)(*(scale for _, scale in loras))
        if L.llama_set_adapters_lora(self._ctx, adapters if n else None, n, scales if n else None):
            return False
        self._loras = loras
        return True

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
            try:
                self._place(request, free)
            except Exception as exc:  # a bug: fail this request, not the scheduler's loop
                self._end(request, EngineError(f"llama.cpp batch failed: {exc}"))

    def _place(self, request: Request, free: list[_Slot]) -> None:
        """Give `request` the free slot whose cached KV serves most of its prompt."""
        if any(lora in self._freed for lora, _ in request.loras):
            # its adapter was replaced or unloaded after the request took it
            self._end(request, EngineError("the adapter was unloaded; send the request again"))
            return
        slot = max(free, key=lambda s: (_reusable(s, request), -s.used))
        keep = min(_reusable(slot, request), len(request.prompt) - 1)
        keep = keep if request.reuse else 0
        if not self._L.llama_memory_seq_rm(self._mem, slot.seq_id, keep, -1):
            self._L.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
            keep = 0
        self._clock += 1
        slot.request, slot.used, slot.generated, slot.prefilled = request, self._clock, 0, False
        slot.cached, slot.loras = request.prompt[:keep], request.loras
        slot.todo = request.prompt[keep:]
        self.stats["prefix_reused"] += keep

    def _step(self) -> None:
        """One decode call for the busy slots, each on its own adapters (or, without
        per-sequence LoRA, one call per adapter set)."""
        # (slot, its request) of the busy slots
        active = [(s, s.request) for s in self._slots if s.request is not None]
        # Alone, a prompt goes in chunks of n_batch, as llama-cpp-python does; beside answers
        # being decoded, in smaller chunks so that they keep flowing.
        chunk = self._prefill_chunk if any(s.prefilled for s, _ in active) else self._n_batch
        if self._per_seq.available:
            if self._per_seq.apply({s.seq_id: r.loras for s, r in active}):
                self._decode(active, chunk)
            else:
                for slot, _ in active:
                    self._release(slot, EngineError("llama.cpp could not apply the adapters"))
            return
        sets: dict[tuple, list[tuple[_Slot, Request]]] = {}
        for slot, request in active:
            sets.setdefault(request.loras, []).append((slot, request))
        # the context's current set first: changing sets costs llama.cpp a new graph
        for loras in sorted(sets, key=lambda loras: loras != self._loras):
            members = sets[loras]
            if not self._use(loras):
                for slot, _ in members:
                    self._release(slot, EngineError("llama.cpp could not apply the adapters"))
                continue
            self._decode(members, chunk)

    def _decode(self, active: list[tuple[_Slot, Request]], chunk: int) -> None:
        L, b = self._L, self._batch
        token, pos, n_seq_id, seq_id, logits = self._arrays
        decoding = [(s, r) for s, r in active if s.prefilled]
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
        sets = len({slot.loras for slot, _ in fed})
        stats["max_adapter_sets_per_decode"] = max(stats["max_adapter_sets_per_decode"], sets)
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
