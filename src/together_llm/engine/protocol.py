"""The generation protocol every engine speaks.

Messages (or a prompt string) and `SamplingParams` go in; a `Generation` comes out: iterate
it for text pieces as they are produced, then read `.completion` for the whole text, the
token usage and why it ended (`stop`: the model finished or a stop sequence matched;
`length`: max_tokens or the context ran out).

An engine only has to say how to tokenize, detokenize and produce raw token ids
(`_token_ids`); prompt rendering, context checks, stop sequences and the clean-up of the
text live here and in `postprocess`, so every engine behaves the same.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import ContextError, TllmError
from ..models.chat_template import render_chat
from ..sampling import SamplingParams
from .postprocess import Detokenizer, OutputFilter


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass
class TokenLogprob:
    """One generated token, how likely the model found it, and its likeliest alternatives."""

    token: bytes
    logprob: float | None  # None for a prompt's first token: nothing came before it
    top: list[tuple[bytes, float]]


def token_logprob(engine: Engine, token_id: int, logprob: float, top) -> TokenLogprob:
    """A TokenLogprob from the ids and logprobs an engine reports."""
    text = engine.token_bytes
    return TokenLogprob(text(token_id), logprob, [(text(i), lp) for i, lp in top])


@dataclass
class Completion:
    text: str
    usage: Usage
    finish_reason: str  # "stop" or "length"

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "usage": self.usage.to_dict(),
            "finish_reason": self.finish_reason,
        }


# One step's token: its id, or with logprobs asked for (id, logprob, top), top being the
# (id, logprob) of the likeliest tokens.
Sampled = int | tuple[int, float, list[tuple[int, float]]]


class TokenIds(Iterator[Sampled], Protocol):
    """What `_token_ids` returns: the tokens, one per step, and `close()`, which stops the
    decoding (a generator, or the batch scheduler's TokenStream)."""

    def close(self) -> None: ...


class Engine:
    """Base class: subclasses set the attributes below and implement the methods below."""

    name: str = "engine"
    model_name: str = ""
    context_length: int = 0
    chat_template: str | None = None
    bos_token: str = ""
    eos_token: str = ""
    special_texts: Sequence[str] = ()  # special-token strings that must never reach the user
    concurrent: bool = False  # True when the engine interleaves requests itself (batching)
    supports_grammar: bool = False  # True when SamplingParams.grammar constrains the output
    counts_tokens: bool = True  # False for remote engines: no local tokenizer or template
    supports_logprobs: bool = False  # True when `_token_ids` yields (id, logprob, top) tuples

    # --- what each engine implements -----------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        """Token ids of an already rendered prompt (special-token text parsed as tokens)."""
        raise NotImplementedError

    def detokenize(self, ids: Sequence[int]) -> str:
        """Text of `ids` with special tokens skipped."""
        raise NotImplementedError

    def is_end(self, token_id: int) -> bool:
        """True for end-of-generation tokens (EOS, end of turn)."""
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        """How many token ids the model knows (ids sent by clients are checked against it)."""
        raise NotImplementedError

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes one token stands for (logprobs report tokens one by one)."""
        raise NotImplementedError

    def _token_ids(
        self, prompt_ids: list[int], params: SamplingParams, max_tokens: int
    ) -> TokenIds:
        """Sampled ids, one per step, at most `max_tokens`; closing the iterator cancels.
        An engine that queues requests returns an iterator with a `cancel()` method too,
        which another thread may call to withdraw a request still waiting for its turn."""
        raise NotImplementedError

    def close(self) -> None:
        """Free the model."""

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One unit-length vector per text (mean of the last hidden states)."""
        raise TllmError(f"the {self.name} engine does not make embeddings")

    # --- shared behaviour ----------------------------------------------------------------
    def serial(self):
        """Held while a generation runs on an engine that runs one at a time, so many
        threads (a server's requests) can share it safely."""
        if self.concurrent:
            return contextlib.nullcontext()
        return self.__dict__.setdefault("_serial_lock", threading.Lock())

    def render(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        return render_chat(
            self.chat_template,
            messages,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
            add_generation_prompt=add_generation_prompt,
        )

    def chat(self, messages: list[dict], params: SamplingParams) -> Generation:
        return self.complete(self.render(messages), params)

    def complete(self, prompt: str, params: SamplingParams, trim: bool = True) -> Generation:
        """Continue `prompt`; `trim=False` keeps the continuation's outer whitespace (raw
        text completion, where " Paris" after "The capital is" needs its space)."""
        return self.generate(self.tokenize(prompt), params, trim)

    def generate(self, ids: list[int], params: SamplingParams, trim: bool = True) -> Generation:
        """A generation from prompt token ids (when the caller has tokenized already)."""
        if params.logprobs is not None and not self.supports_logprobs:
            raise TllmError(f"the {self.name} engine does not report logprobs")
        room = self.context_length - len(ids)
        if room < 1:
            raise ContextError(
                f"the prompt is {len(ids)} tokens but the context holds {self.context_length}; "
                "shorten it or raise it with `tllm config set context_length N`"
            )
        return Generation(self, ids, params, min(params.max_tokens, room), trim)


class Generation:
    """One answer in progress: iterate for text pieces; `.completion` is set at the end."""

    def __init__(
        self,
        engine: Engine,
        prompt_ids: list[int],
        params: SamplingParams,
        max_tokens: int,
        trim: bool = True,
    ):
        self.engine = engine
        self.prompt_ids = prompt_ids
        self.params = params
        self.max_tokens = max_tokens
        self.trim = trim
        self.completion: Completion | None = None  # stays None when cancelled
        self.logprobs: list[TokenLogprob] = []  # filled when params.logprobs is set
        self.cancelled = False
        self._ids: TokenIds | None = None  # the engine's tokens, once decoding is asked for

    def cancel(self) -> None:
        """Stop this generation from another thread (the reader went away): a request that
        still waits for a batch slot leaves the queue at once, instead of being decoded
        until its next piece shows nobody is reading."""
        self.cancelled = True
        cancel = getattr(self._ids, "cancel", None)
        if cancel is not None:
            cancel()

    def __iter__(self) -> Iterator[str]:
        detok = Detokenizer(self.engine.detokenize)
        out = OutputFilter(self.params.stop, self.engine.special_texts, self.trim)
        pieces: list[str] = []
        generated, finish = 0, "length"
        with self.engine.serial():
            ids = self._ids = self.engine._token_ids(self.prompt_ids, self.params, self.max_tokens)
            if self.cancelled:  # cancel() came before the iterator existed
                self.cancel()
            try:
                for item in ids:
                    token_id = item if isinstance(item, int) else item[0]
                    if self.engine.is_end(token_id):
                        finish = "stop"
                        break
                    generated += 1
                    if not isinstance(item, int):  # (id, logprob, [(id, logprob)...])
                        self.logprobs.append(token_logprob(self.engine, *item))
                    text = out.feed(detok.feed(token_id))
                    if text:
                        pieces.append(text)
                        yield text
                    if out.stopped:
                        finish = "stop"
                        break
            finally:
                ids.close()  # cancels the engine's decoding when we stop early
        if self.cancelled:
            return
        tail = out.finish()
        if tail:
            pieces.append(tail)
            yield tail
        self.completion = Completion(
            "".join(pieces), Usage(len(self.prompt_ids), generated), finish
        )

    def run(self) -> Completion:
        """Generate to the end without streaming."""
        for _ in self:
            pass
        if self.completion is None:  # cancel() came from another thread
            raise TllmError("the generation was cancelled")
        return self.completion
