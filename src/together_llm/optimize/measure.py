"""Measuring one backend for `tllm optimize`, in a process of its own.

Each backend runs in a fresh Python process (`python -m together_llm.optimize.measure`,
the spec as JSON on standard input, the figures as JSON on standard output), so its peak
resident memory is its own, nothing one backend leaves in memory slows the next, and the
llama.cpp backends never import torch (whose import alone holds a few hundred MB).

What is measured, in this order:
1. load: opening the engine the assistant would serve with (HFEngine in the given precision,
   or LlamaCppEngine on the GGUF file), as `tllm ask` does;
2. speed: each prompt answered greedily up to `max_tokens` (or its end-of-turn), after one
   warm-up answer. Time to first token is from asking to the first token (prompt included);
   decode tokens/s counts the tokens after the first over the time after it. The prompt
   cache is not reused between prompts (a seeded request starts clean), so no backend gets
   the shared system prompt for free;
3. memory: the process's peak resident set size after loading and answering (before
   scoring perplexity, whose logits buffers serving never holds), and the model's bytes
   (tensor bytes for transformers, file bytes for GGUF);
4. quality: perplexity of the held-out token ids the parent tokenized once, in the same
   windows for every backend (evaluate/perplexity.py `window_spans`).
"""

from __future__ import annotations

import json
import math
import resource
import statistics
import sys
import time
from pathlib import Path

from ..engine.hf_engine import HFEngine
from ..engine.llamacpp.engine import LlamaCppEngine, auto_threads
from ..errors import TllmError
from ..evaluate.perplexity import Scored, sequence_nll, window_spans
from ..sampling import SamplingParams


def _peak_rss() -> int:
    """This process's peak resident set, in bytes. Linux keeps the high-water mark of the
    process that forked us in getrusage's ru_maxrss (the parent's torch included), so read
    VmHWM, which belongs to this program's own memory, where there is one."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def open_engine(spec: dict):
    """The engine of `spec`: {"engine": "transformers", "model_dir", "adapters",
    "precision"} or {"engine": "llama.cpp", "gguf"}."""
    if spec["engine"] == "transformers":
        return HFEngine(
            Path(spec["model_dir"]),
            [Path(p) for p in spec.get("adapters", [])],
            context_length=spec["context_length"],
            precision=spec["precision"],
        )

    return LlamaCppEngine(
        Path(spec["gguf"]),
        context_length=spec["context_length"],
        threads=spec.get("threads") or None,
    )


def speed(engine, system_prompt: str, prompts: list[str], max_tokens: int) -> dict:
    """Median time to first token (s) and decode tokens/s over `prompts`, timed on the
    engine's token stream (what Generation reads), so an answer of whitespace or special
    tokens still counts what the engine computed."""

    def answer(prompt: str, limit: int) -> tuple[float, float, int]:
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
            {"role": "user", "content": prompt}
        ]
        ids = engine.tokenize(engine.render(messages))
        params = SamplingParams(temperature=0.0, max_tokens=limit, seed=0, repetition_penalty=1.0)
        start, first, count = time.perf_counter(), None, 0
        with engine.serial():
            stream = engine._token_ids(ids, params, min(limit, engine.context_length - len(ids)))
            try:
                for token in stream:
                    first = first or time.perf_counter()
                    count += 1
                    if engine.is_end(token):
                        break
            finally:
                stream.close()
        return (first or start) - start, time.perf_counter() - (first or start), count

    answer(prompts[0], 4)  # warm-up: first-call allocations and kernel choices
    firsts, decoded, decode_s = [], 0, 0.0
    for prompt in prompts:
        ttft, rest_s, count = answer(prompt, max_tokens)
        if count < 2:
            continue  # a one-token answer says nothing about decoding
        firsts.append(ttft)
        decoded += count - 1
        decode_s += rest_s
    if not firsts:
        raise RuntimeError("every prompt got a one-token answer; nothing to time")
    return {
        "ttft_s": statistics.median(firsts),
        "decode_tokens_per_s": decoded / decode_s,
        "answered_tokens": decoded + len(firsts),
    }


def model_bytes(engine, spec: dict) -> int:
    """Bytes of the weights as the backend holds them."""
    if spec["engine"] == "llama.cpp":
        return Path(spec["gguf"]).stat().st_size
    import torch

    seen, total = set(), 0
    for module in engine.model.modules():
        tensors = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
        weight = getattr(module, "weight", None)
        if callable(weight) and not isinstance(weight, torch.Tensor):  # a quantized Linear
            tensors.append(weight())
            bias = module.bias()
            if bias is not None:
                tensors.append(bias)
        for tensor in tensors:
            key = (tensor.data_ptr(), tensor.numel())
            if key not in seen:  # tied weights count once
                seen.add(key)
                total += tensor.numel() * tensor.element_size()
    return total


def _pieces(rows: list[dict], window: int, stride: int):
    """(ids of one window, scored flags of its positions) for every window holding a
    scored token, as evaluate/perplexity.py's `sequence_nll` cuts them."""

    for row in rows:
        ids, scored = row["ids"], row["scored"]
        for start, end, first in window_spans(len(ids), window, stride):
            flags = [False] * (first - start) + scored[first:end]
            if any(flags[1:]):
                yield ids[start:end], flags


def nll_transformers(engine, rows: list[dict], window: int, stride: int) -> tuple[float, int]:
    scored = [Scored(row["ids"], row["scored"]) for row in rows]
    return sequence_nll(engine.model, scored, window, stride)


def nll_llama_cpp(spec: dict, rows: list[dict], window: int, stride: int) -> tuple[float, int]:
    """Summed NLL and scored tokens with every position's logits (logits_all), one window
    per evaluation from an empty cache, so each window sees exactly what it does on the
    transformers backends."""
    import numpy as np
    from llama_cpp import Llama

    threads, batch_threads = (spec["threads"],) * 2 if spec.get("threads") else auto_threads()
    llm = Llama(
        model_path=spec["gguf"],
        n_ctx=window,
        n_batch=window,
        n_ubatch=window,
        logits_all=True,
        n_threads=threads,
        n_threads_batch=batch_threads,
        verbose=False,
    )
    total, count = 0.0, 0
    try:
        for ids, flags in _pieces(rows, window, stride):
            llm.reset()
            llm.eval(ids)
            logits = np.asarray(llm.scores[: len(ids) - 1], dtype=np.float64)
            keep = np.array(flags[1:], dtype=bool)
            logits, targets = logits[keep], np.array(ids[1:])[keep]
            top = logits.max(axis=1, keepdims=True)
            log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
            total += float((log_norm - logits[np.arange(len(targets)), targets]).sum())
            count += len(targets)
    finally:
        llm.close()
    return total, count


def measure(spec: dict) -> dict:
    start = time.perf_counter()
    engine = open_engine(spec)
    load_s = time.perf_counter() - start
    try:
        figures = speed(engine, spec.get("system_prompt", ""), spec["prompts"], spec["max_tokens"])
        figures.update(
            load_s=load_s, peak_rss_bytes=_peak_rss(), model_bytes=model_bytes(engine, spec)
        )
        if spec["engine"] == "transformers":
            total, count = nll_transformers(engine, spec["rows"], spec["window"], spec["stride"])
    finally:
        if spec["engine"] == "llama.cpp":
            engine.close()
    if spec["engine"] == "llama.cpp":
        total, count = nll_llama_cpp(spec, spec["rows"], spec["window"], spec["stride"])
    figures.update(perplexity=math.exp(total / count), scored_tokens=count)
    return figures


def main() -> None:
    spec = json.loads(sys.stdin.read())
    try:
        figures = measure(spec)
    except (TllmError, RuntimeError, ValueError) as exc:
        print(f"{exc}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
