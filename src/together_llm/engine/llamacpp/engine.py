"""The llama.cpp engine: GGUF models through llama-cpp-python, the default for ask and chat.

Prompt tokens are ours (rendered by the shared chat template, special tokens parsed, no BOS
added: the template decides, as transformers does), so both engines feed the model the
same ids. llama-cpp-python keeps the KV cache of the previous call and reuses the longest
shared prefix, so each turn of a chat only evaluates the new tokens.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from ...errors import TllmError
from ...methods import GGUF_ADAPTER_TYPES
from ...models import gguf_file
from ...sampling import SamplingParams
from ..protocol import Engine, TokenIds


def usable_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def auto_threads() -> tuple[int, int]:
    """(generation threads, prompt threads) for the cores that are free now.

    llama.cpp's CPU threads spin while they wait for each other, so a thread on a core that
    another process holds stalls every step: on a busy 2-core machine a 30-token answer
    went from 0.7 s to 17 s. Decoding one token is memory-bound and gains little past half
    the cores; prompt processing is compute-bound and uses every free core.
    """
    cores = usable_cores()
    free = max(1, round(cores - os.getloadavg()[0])) if hasattr(os, "getloadavg") else cores
    return max(1, min(cores // 2, free)), max(1, min(cores, free))


def check_gguf_lora(lora_path: Path, model_path: Path) -> None:
    """Refuse a file that is no GGUF LoRA for the model's architecture: llama.cpp would load
    another kind of file as an adapter that changes nothing."""
    arch = gguf_file.read_field(model_path, "general.architecture")
    if (
        gguf_file.read_field(lora_path, "adapter.type") not in GGUF_ADAPTER_TYPES
        or gguf_file.read_field(lora_path, "general.architecture") != arch
    ):
        raise TllmError(f"{lora_path} is not a GGUF LoRA adapter for a {arch} model")


class LlamaCppEngine(Engine):
    name = "llama.cpp"
    supports_grammar = True

    def __init__(
        self,
        path: Path,
        context_length: int = 2048,
        model_name: str = "",
        threads: int | None = None,
        lora_path: Path | None = None,
        gpu_layers: int = -1,
    ):
        """`lora_path`: a GGUF LoRA adapter (`tllm export --gguf-adapter`) applied on load.
        `gpu_layers`: layers offloaded to the GPU where this llama.cpp build has a GPU backend
        (-1 all); a CPU-only build ignores it."""
        arch = gguf_file.read_field(path, "general.architecture")
        if lora_path:
            check_gguf_lora(lora_path, path)
        trained = gguf_file.read_field(path, f"{arch}.context_length") if arch else None
        if trained and context_length > trained:
            raise TllmError(
                f"context_length {context_length} is more than {path.name} was "
                f"trained for ({trained}); use `tllm config set context_length {trained}`"
            )
        import llama_cpp
        from llama_cpp import Llama

        self._llama_cpp = llama_cpp
        n_threads, n_threads_batch = (threads, threads) if threads else auto_threads()
        try:
            self.llm = Llama(
                model_path=str(path),
                n_ctx=context_length,
                n_batch=min(512, context_length),
                n_threads=n_threads,
                n_threads_batch=n_threads_batch,
                verbose=False,
                n_gpu_layers=gpu_layers if llama_cpp.llama_supports_gpu_offload() else 0,
                lora_path=str(lora_path) if lora_path else None,
            )
        except (ValueError, RuntimeError) as exc:
            if lora_path and "LoRA" in str(exc):
                raise TllmError(
                    f"llama.cpp could not apply the adapter {lora_path} to "
                    f"{path.name}: it is not a GGUF LoRA for this model"
                ) from None
            raise TllmError(
                f"llama.cpp could not load {path}: the file is truncated, corrupt "
                f"or of an architecture llama.cpp does not know ({exc})"
            ) from None
        self.path = path
        self.model_name = model_name or path.stem
        # llama.cpp may round its context up, but llama-cpp-python sizes buffers to ours.
        self.context_length = min(context_length, self.llm.n_ctx())
        self.chat_template = self.llm.metadata.get("tokenizer.chat_template")
        self.bos_token = self._text(self.llm.token_bos())
        self.eos_token = self._text(self.llm.token_eos())
        self.special_texts = [t for t in (self.bos_token, self.eos_token) if t]

    def _text(self, token_id: int) -> str:
        if token_id < 0:
            return ""
        return self.llm.detokenize([token_id], special=True).decode("utf-8", errors="replace")

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.llm.detokenize(list(ids), special=False).decode("utf-8", errors="replace")

    @property
    def vocab_size(self) -> int:
        return self.llm.n_vocab()

    def token_bytes(self, token_id: int) -> bytes:
        return self.llm.detokenize([token_id], special=True)

    def is_end(self, token_id: int) -> bool:
        return bool(self._llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token_id))

    def _token_ids(
        self, prompt_ids: list[int], params: SamplingParams, max_tokens: int
    ) -> TokenIds:
        if params.seed is not None:
            # Reusing the cached prompt would evaluate its tail as a smaller batch, whose
            # kernels round differently; a seeded answer must not depend on what ran before.
            self.llm.reset()
            self.llm.set_seed(params.seed)
        else:
            self.llm.set_seed(int.from_bytes(os.urandom(4), "little") % (2**32 - 1))
        grammar = None
        if params.grammar:
            from llama_cpp import LlamaGrammar

            try:
                grammar = LlamaGrammar.from_string(params.grammar, verbose=False)
            except ValueError as exc:
                raise TllmError(f"the grammar does not parse: {exc}") from None
        tokens = self.llm.generate(
            prompt_ids,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=0.0,
            temp=params.temperature,
            repeat_penalty=params.repetition_penalty,
            frequency_penalty=params.frequency_penalty,
            presence_penalty=params.presence_penalty,
            grammar=grammar,
        )
        try:
            for count, token in enumerate(tokens, start=1):
                yield token
                if count >= max_tokens:
                    return
        finally:
            tokens.close()

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Mean-pooled, normalized embeddings from a second llama.cpp context made for it
        (a generating context cannot pool), opened on first use."""

        with self.__dict__.setdefault("_embed_lock", threading.Lock()):
            if getattr(self, "_embedder", None) is None:
                from llama_cpp import LLAMA_POOLING_TYPE_MEAN, Llama

                self._embedder = Llama(
                    model_path=str(self.path),
                    embedding=True,
                    pooling_type=LLAMA_POOLING_TYPE_MEAN,
                    n_ctx=self.context_length,
                    n_batch=self.context_length,
                    n_ubatch=self.context_length,
                    verbose=False,
                )
            for text in texts:
                if len(self.tokenize(text)) > self.context_length:
                    raise TllmError(
                        f"an input is longer than the {self.context_length}-token context"
                    )
            return self._embedder.embed(texts, normalize=True)

    def close(self) -> None:
        self.llm.close()
        if getattr(self, "_embedder", None) is not None:
            self._embedder.close()
