"""Continuous batching on the llama.cpp engine: aggregate tokens/s of 1 vs N concurrent
streaming requests through `BatchedLlamaCppEngine`, and of 1 request through the plain
`LlamaCppEngine`, on the bundled model.

    .venv/bin/python bench/batch_decode.py                 # 3 rounds, 8 clients, 64 tokens
    .venv/bin/python bench/batch_decode.py --rounds 5 --clients 8 --tokens 64 --threads 1
    .venv/bin/python bench/batch_decode.py --batch-threads 2   # 1 thread per token, 2 per batch

Each round asks questions that no engine was asked before (the round number is in them), so
a slot's prefix cache only helps with the shared chat-template prefix, as llama-cpp-python's
own cache does. "1 client" answers N questions one after another (the same questions, and
so the same greedy tokens, on both engines); "N clients" streams N others from N threads at
once, as the server does. Tokens/s = completion tokens / wall time, prompts included.

Decoding this model on a CPU is compute-bound (a step of 8 sequences costs about 8 times a
step of one on the same threads), so what batching gains here comes from the threads a
batch gets (`n_threads_batch`, chosen by free cores at load; `--batch-threads` sets it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from together_llm.engine.llamacpp.batch import BatchedLlamaCppEngine
from together_llm.engine.llamacpp.engine import LlamaCppEngine
from together_llm.models.gguf_file import bundled_gguf
from together_llm.sampling import SamplingParams

TOPICS = [
    "a cat who learns to sail",
    "a lighthouse keeper",
    "a robot gardener",
    "a lost umbrella",
    "a dragon who fears heights",
    "a city under the sea",
    "a clockmaker's apprentice",
    "a girl who collects clouds",
    "a haunted bakery",
    "a train that never stops",
    "an owl who cannot sleep",
    "a painter on the moon",
    "a river that talks",
    "a snowman in summer",
    "a library of lost songs",
    "a fox and a violin",
]


def questions(round_no: int, n: int) -> list[list[dict]]:
    return [
        [
            {
                "role": "user",
                "content": f"Story {round_no}.{i}: write a long story about "
                f"{TOPICS[i % len(TOPICS)]}.",
            }
        ]
        for i in range(n)
    ]


def stream(engine, messages, params, counts, i):
    generation = engine.chat(messages, params)
    for _ in generation:  # streamed piece by piece, as a server would
        pass
    counts[i] = generation.completion.usage.completion_tokens


def one_client(engine, round_no, n, params) -> float:
    counts = [0] * n
    start = time.perf_counter()
    for i, messages in enumerate(questions(round_no, n)):
        stream(engine, messages, params, counts, i)
    return sum(counts) / (time.perf_counter() - start)


def many_clients(engine, round_no, n, params) -> float:
    counts = [0] * n
    threads = [
        threading.Thread(target=stream, args=(engine, m, params, counts, i))
        for i, m in enumerate(questions(round_no, n))
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="llama.cpp threads (default: the engine's choice by free cores)",
    )
    parser.add_argument(
        "--batch-threads",
        type=int,
        default=None,
        help="threads for steps of more than one token (prompts, batches)",
    )
    args = parser.parse_args()
    params = SamplingParams(temperature=0, max_tokens=args.tokens)
    path = bundled_gguf()
    plain = LlamaCppEngine(path, threads=args.threads)
    batched = BatchedLlamaCppEngine(path, threads=args.threads, slots=args.clients)
    if args.batch_threads:
        import llama_cpp

        one = batched.llm.context_params.n_threads
        batched.scheduler.set_threads(one, args.batch_threads)
        llama_cpp.llama_set_n_threads(plain.llm._ctx.ctx, one, args.batch_threads)
        batched.llm.context_params.n_threads_batch = args.batch_threads  # for the line below
    cp = batched.llm.context_params
    print(
        f"load before: {os.getloadavg()[0]:.2f}; threads: {cp.n_threads} for one token, "
        f"{cp.n_threads_batch} for a batch; {args.clients} clients x {args.tokens} tokens"
    )
    one_client(plain, 0, 2, params), one_client(batched, 0, 2, params)  # warm-up
    rows: dict[str, list[float]] = {
        "plain 1 client": [],
        "batched 1 client": [],
        f"batched {args.clients} clients": [],
    }
    for r in range(1, args.rounds + 1):  # interleaved, so a change in load hits every line
        # both 1-client lines answer the same questions (the same tokens: greedy), in turn first
        pair = [("plain 1 client", plain), ("batched 1 client", batched)][:: 1 if r % 2 else -1]
        for name, engine in pair:
            rows[name].append(one_client(engine, 2 * r, args.clients, params))
        rows[f"batched {args.clients} clients"].append(
            many_clients(batched, 2 * r + 1, args.clients, params)
        )
    stats = dict(batched.scheduler.stats)
    plain.close()
    batched.close()
    median = {k: statistics.median(v) for k, v in rows.items()}
    for k, v in rows.items():
        print(f"{k:>20}: {median[k]:7.1f} tok/s  (rounds: {', '.join(f'{x:.1f}' for x in v)})")
    many = median[f"batched {args.clients} clients"]
    print(
        f"batched 1 client / plain 1 client: {median['batched 1 client'] / median['plain 1 client']:.2f}x"
    )
    print(
        f"batched {args.clients} clients / batched 1 client: {many / median['batched 1 client']:.2f}x"
    )
    print(
        f"batched {args.clients} clients / plain 1 client: {many / median['plain 1 client']:.2f}x"
    )
    print(f"scheduler: {stats}; load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
