"""Continuous batching on llama.cpp: concurrent requests decode together, one
`llama_decode` call per step (the scheduler: scheduler.py).

`BatchedLlamaCppEngine` is a `LlamaCppEngine` whose generations, from any number of
threads, are requests to one `BatchScheduler`; the engine's own calls (tokenize,
detokenize...) are guarded so that none runs while `close()` frees the model.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path

from ...errors import TllmError
from ...sampling import SamplingParams
from ..protocol import token_logprob
from .engine import LlamaCppEngine, auto_threads, check_gguf_lora, usable_cores
from .requests import DONE, Request, TokenStream
from .scheduler import BatchScheduler, address


def _guarded(method):
    """`method` refused once the engine is closed, and never running while close() frees
    the model (a reader streaming buffered tokens would otherwise detokenize freed memory)."""

    def call(self, *args):
        with self._state:
            if self._closed:
                raise TllmError("the engine is closed")
            self._users += 1
        try:
            return method(self, *args)
        finally:
            with self._state:
                self._users -= 1
                self._state.notify_all()

    return call


class BatchedLlamaCppEngine(LlamaCppEngine):
    """`LlamaCppEngine` whose requests, from any number of threads, decode together."""

    concurrent = True  # Generation need not serialize us
    supports_logprobs = True
    tokenize = _guarded(LlamaCppEngine.tokenize)
    detokenize = _guarded(LlamaCppEngine.detokenize)
    is_end = _guarded(LlamaCppEngine.is_end)
    token_bytes = _guarded(LlamaCppEngine.token_bytes)

    def __init__(
        self,
        path: Path,
        context_length: int = 2048,
        model_name: str = "",
        threads: int | None = None,
        slots: int = 8,
        lora_path: Path | None = None,
        gpu_layers: int = -1,
    ):
        self._state, self._users, self._closed = threading.Condition(), 0, False
        super().__init__(
            path,
            context_length=context_length,
            model_name=model_name,
            threads=threads,
            lora_path=lora_path,
            gpu_layers=gpu_layers,
        )
        try:
            self.scheduler = BatchScheduler(
                self.llm._model,
                self.llm.context_params,
                slots,
                self.context_length,
                self.llm.n_batch,
            )
        except (ValueError, TllmError) as exc:  # bad slots, or no memory for the context
            self.llm.close()
            raise TllmError(
                f"llama.cpp could not make {slots} slots of {self.context_length} "
                f"tokens ({exc}); lower slots or context_length"
            ) from None
        self.slots = slots
        # what our requests decode with: the adapter loaded with the model, if any
        lora = address(self.llm._lora_adapter) if self.llm._lora_adapter else 0
        self.loras: tuple[tuple[int, float], ...] = ((lora, self.llm.lora_scale),) if lora else ()
        if not threads:
            # Steps of several sequences are compute-bound: give them every core (a server
            # is expected to have the machine); one-token steps keep the parent's choice.
            self.scheduler.set_threads(auto_threads()[0], usable_cores())
        # Each slot holds n_ctx_seq tokens (llama.cpp may round up): never promise more.
        self.context_length = min(self.context_length, self.scheduler.n_ctx_seq)
        self._finalizer = weakref.finalize(self, self.scheduler.close)

    def _sampler_chain(self, params: SamplingParams):
        """The chain llama-cpp-python's `Llama._init_sampler` builds for the same settings
        (min_p 0, typical 1, no mirostat), plus a grammar when one is given."""
        L, llm = self._llama_cpp, self.llm
        chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())

        def add(sampler):
            if not sampler:
                L.llama_sampler_free(chain)
                raise TllmError("the grammar does not parse (GBNF, with a `root` rule)")
            L.llama_sampler_chain_add(chain, sampler)

        add(
            L.llama_sampler_init_penalties(
                llm.n_vocab(),
                llm.last_n_tokens_size,
                params.repetition_penalty,
                params.frequency_penalty,
                params.presence_penalty,
            )
        )
        if params.grammar:
            add(
                L.llama_sampler_init_grammar(
                    llm._model.vocab, params.grammar.encode("utf-8"), b"root"
                )
            )
        if params.temperature == 0:
            add(L.llama_sampler_init_greedy())
        else:
            seed = params.seed
            if seed is None:
                seed = int.from_bytes(os.urandom(4), "little") % (2**32 - 1)
            add(L.llama_sampler_init_top_k(params.top_k))
            add(L.llama_sampler_init_typical(1.0, 1))
            add(L.llama_sampler_init_top_p(params.top_p, 1))
            add(L.llama_sampler_init_min_p(0.0, 1))
            add(L.llama_sampler_init_temp(params.temperature))
            add(L.llama_sampler_init_dist(seed))
        return chain

    def load_lora(self, path: Path) -> int:
        """Load the GGUF LoRA at `path` on this engine's model, for requests that name it
        (`AdapterView`); freed by `forget_lora`, or with the model."""
        check_gguf_lora(path, self.path)
        return self.scheduler.load(str(path))

    def forget_lora(self, lora: int) -> None:
        """Free an adapter `load_lora` loaded, once no request uses it."""
        self.scheduler.forget(lora)

    def _token_ids(
        self,
        prompt_ids: list[int],
        params: SamplingParams,
        max_tokens: int,
        loras: tuple[tuple[int, float], ...] | None = None,
    ) -> TokenStream:
        if not 0 < len(prompt_ids) < self.scheduler.n_ctx_seq:
            raise TllmError(
                f"the prompt is {len(prompt_ids)} tokens; a slot holds {self.scheduler.n_ctx_seq}"
            )
        request = Request(
            list(prompt_ids),
            self._sampler_chain(params),
            max_tokens,
            reuse=params.seed is None,
            logprobs=params.logprobs,
            loras=self.loras if loras is None else loras,
        )
        try:
            self.scheduler.submit(request)
        except TllmError:
            self._llama_cpp.llama_sampler_free(request.chain)
            raise
        return TokenStream(request)

    def prompt_logprobs(
        self, prompt_ids: list[int], k: int = 0, loras: tuple[tuple[int, float], ...] | None = None
    ) -> list:
        """Each prompt token's logprob given the tokens before it (None for the first), with
        the k likeliest alternatives: what `echo` with `logprobs` reports."""
        if not 0 < len(prompt_ids) < self.scheduler.n_ctx_seq:
            raise TllmError(
                f"the prompt is {len(prompt_ids)} tokens; a slot holds {self.scheduler.n_ctx_seq}"
            )
        params = SamplingParams(temperature=0, max_tokens=1)
        loras = self.loras if loras is None else loras
        request = Request(
            list(prompt_ids), self._sampler_chain(params), 1, reuse=False, logprobs=k, loras=loras
        )
        request.prompt_scores = []
        self.scheduler.submit(request)
        while (item := request.out.get()) is not DONE:
            if isinstance(item, BaseException):
                raise item
        return [None] + [token_logprob(self, *item) for item in request.prompt_scores]

    def close(self) -> None:
        with self._state:
            self._closed = True
            self._state.wait_for(lambda: self._users == 0)
        self._finalizer()  # the scheduler stops; requests in flight end with an error
        super().close()
