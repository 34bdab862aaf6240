"""Per-sequence LoRA: one llama.cpp decode for slots on different adapters.

Stock llama.cpp applies a context's adapter set to every sequence of a `llama_decode`
call, so slots on different adapters need a call each, and on a CPU a step's cost is
nearly the sum of its calls: 8 clients on 4 adapters ran at 0.39x the speed of 8 on the
base (bench/adapters.py; 0.87x with the patch). The set-up builds llama.cpp with our patch
(scripts/llama.cpp/lora-per-sequence.patch) that adds `llama_set_adapters_lora_seq`: each
adapter gets a scale per sequence, the graph multiplies the adapter's low-rank activations
(rank x tokens, the cheap side) by each token's scale, and a token whose sequence does not
use the adapter gets 0. So one call decodes every slot, each with its own adapters and
strengths.

A llama.cpp built without the patch (another build of llama-cpp-python) lacks the symbol:
`PerSequenceLoras.available` is False and the scheduler falls back to a call per set.
"""

from __future__ import annotations

import ctypes

Loras = tuple[tuple[int, float], ...]  # (adapter address, scale) pairs


class PerSequenceLoras:
    """The context's per-sequence adapter table, set only when it changes."""

    def __init__(self, L, ctx, n_seq: int):
        self._ctx, self._n_seq = ctx, n_seq
        self._set = getattr(L.llama_cpp._lib, "llama_set_adapters_lora_seq", None)
        if self._set is not None:
            self._set.argtypes = [
                ctypes.c_void_p,
                ctypes.POINTER(ctypes.c_void_p),
                ctypes.c_size_t,
                ctypes.POINTER(ctypes.c_float),
                ctypes.c_int32,
            ]
            self._set.restype = ctypes.c_int32
        self._table: tuple[tuple[int, ...], tuple[float, ...]] = ((), ())

    @property
    def available(self) -> bool:
        return self._set is not None

    @property
    def adapters(self) -> tuple[int, ...]:
        """The adapters the context holds now."""
        return self._table[0]

    def apply(self, by_seq: dict[int, Loras]) -> bool:
        """Make each sequence id's adapters those of `by_seq` (others: none). False when
        llama.cpp refuses."""
        adapters = tuple(sorted({lora for loras in by_seq.values() for lora, _ in loras}))
        index = {lora: i for i, lora in enumerate(adapters)}
        scales = [0.0] * (len(adapters) * self._n_seq)
        for seq, loras in by_seq.items():
            for lora, scale in loras:
                scales[index[lora] * self._n_seq + seq] = scale
        table = (adapters, tuple(scales))
        if table == self._table:
            return True
        n = len(adapters)
        pointers = (ctypes.c_void_p * max(n, 1))(*adapters)
        values = (ctypes.c_float * max(len(scales), 1))(*scales)
        assert self._set is not None
        if self._set(self._ctx, pointers, n, values, self._n_seq):
            return False
        self._table = table
        return True
