#!/usr/bin/env python3
"""Serving speed (DESIGN §7): P2, one streaming client through `tllm serve` against
llama-cpp-python in-process; P3, N concurrent streaming clients against 1 client on the same
server and against llama-cpp-python's own server (`python -m llama_cpp.server`), same load.

    .venv/bin/python bench/serve.py [--rounds 3] [--clients 8] [--max-tokens 128] [--threads N] [--json]
                                    [--peer-python PY] [--tllm PATH]

Bundled SmolLM2-135M GGUF, 127.0.0.1 only. Every request: the same system prompt, a "write a
long story" prompt new to every server (the round is in it), temperature 0, max_tokens 128,
context 2048. Rounds interleave the contenders; figures are medians over rounds. Client:
http.client reading server-sent events, the same code for both servers. Tokens: the last
chunk's `usage` (`stream_options.include_usage`) where sent (ours), else one per content chunk
(llama-cpp-python streams a chunk per token). decode tok/s = (tokens - 1) / (first to last
chunk); end-to-end = tokens / (request to stream end); aggregate = all tokens / (first request
to last stream end). Threads: both peers get `auto_threads()` as it stands at the start; our
server picks its own when it loads the model; `--threads N` pins N (generation and prompt) on
all three (through the throwaway home's assistant.yaml for ours). Peers run from
bench/.venv-llm (see ask_cold.py), with `llama-cpp-python[server]` installed when missing, or
from `--peer-python` (an interpreter that has it: on a machine without the registries). GPU: when
the installed llama.cpp has a GPU backend, all three put every layer on it (ours by its
`gpu_layers: -1` default, the peers by `n_gpu_layers=-1`); a CPU build ignores the setting.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
from ask_cold import ours_bin  # noqa: E402  (bench/ is sys.path[0])
from serve_processes import ensure_server_peer, free_port, server  # noqa: E402
from together_llm.engine.llamacpp.engine import auto_threads  # noqa: E402
from together_llm.models.gguf_file import bundled_gguf  # noqa: E402

N_CTX = 2048
SYSTEM = "You are a helpful assistant."
REQUEST_TIMEOUT = 300.0  # seconds for one request, start to end
TOPICS = [
    "a cat who learns to sail",
    "a lighthouse keeper",
    "a robot gardener",
    "a haunted bakery",
    "a dragon who fears heights",
    "a city under the sea",
    "a lost umbrella",
    "a fox and a violin",
]
SCHEDULING = {
    "ours": "whatever its engine does: serial behind a lock, or decoding requests together",
    "llama_cpp.server": "one Llama behind a lock, one request after another (run with "
    "--interrupt_requests False: by default a new request cuts the stream in progress)",
}


def prompts(tag: str, n: int) -> list[list[dict]]:
    return [
        [
            {"role": "system", "content": SYSTEM},
            {
                "role": "user",
                "content": f"Story {tag}.{i}: write a long story about {TOPICS[i % len(TOPICS)]}.",
            },
        ]
        for i in range(n)
    ]


def measured(start: float, stamps: list[float], usage: int | None, text: str) -> dict:
    if not stamps:
        raise RuntimeError("the stream held no content")
    tokens = usage if usage is not None else len(stamps)
    end = time.perf_counter()
    return {
        "start": start,
        "first": stamps[0],
        "last": stamps[-1],
        "end": end,
        "tokens": tokens,
        "chunks": len(stamps),
        "counted": "usage" if usage is not None else "chunks",
        "decode_tok_s": (tokens - 1) / max(stamps[-1] - stamps[0], 1e-9),
        "e2e_tok_s": tokens / (end - start),
        "text": text,
    }


def stream(port: int, messages: list[dict], max_tokens: int, model: str | None = None) -> dict:
    """One streaming chat request over plain http.client; SSE parsed line by line. `model`:
    the request's model field (None: left out, the server's default)."""
    body = json.dumps(
        {
            **({"model": model} if model else {}),
            "messages": messages,
            "stream": True,
            "temperature": 0.0,
            "max_tokens": max_tokens,
            "stream_options": {"include_usage": True},
        }
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    start, stamps, pieces, usage = time.perf_counter(), [], [], None
    try:
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status} from :{port}: {resp.read(500)!r}")
        for line in resp:
            if time.perf_counter() - start > REQUEST_TIMEOUT:
                raise TimeoutError(f"a request to :{port} ran past {REQUEST_TIMEOUT:.0f} s")
            if not line.startswith(b"data:"):
                continue  # blank separators and ": ping" comments
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            chunk = json.loads(data)
            if "error" in chunk:
                raise RuntimeError(f"error in the stream from :{port}: {chunk['error']}")
            if chunk.get("usage"):
                usage = chunk["usage"]["completion_tokens"]
            for choice in chunk.get("choices") or []:
                if piece := (choice.get("delta") or {}).get("content"):
                    stamps.append(time.perf_counter())
                    pieces.append(piece)
    finally:
        conn.close()
    return measured(start, stamps, usage, "".join(pieces))


def in_process(llm, messages: list[dict], max_tokens: int) -> dict:
    start, stamps, pieces = time.perf_counter(), [], []
    for chunk in llm.create_chat_completion(
        messages, stream=True, temperature=0.0, max_tokens=max_tokens
    ):
        if piece := chunk["choices"][0]["delta"].get("content"):
            stamps.append(time.perf_counter())
            pieces.append(piece)
    return measured(start, stamps, None, "".join(pieces))


def clients(ask, batch: list[list[dict]], concurrent: bool) -> dict:
    """The questions one after another from one client, or each from its own thread at once."""
    if not concurrent:
        return summary([ask(m) for m in batch])
    results: list = [None] * len(batch)
    go = threading.Barrier(len(batch))

    def work(i: int) -> None:
        go.wait(timeout=30)
        try:
            results[i] = ask(batch[i])
        except Exception as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(batch))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + REQUEST_TIMEOUT + 30
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    bad = [r for r in results if not isinstance(r, dict)]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(batch)} concurrent requests failed: {bad[0]!r}")
    return summary(results)


def summary(runs: list[dict]) -> dict:
    start, end = min(r["start"] for r in runs), max(r["end"] for r in runs)
    edges = sorted([(r["first"], 1) for r in runs] + [(r["last"], -1) for r in runs])
    at_once = most = 0
    for _, step in edges:
        at_once += step
        most = max(most, at_once)
    return {
        "tok_s": sum(r["tokens"] for r in runs) / (end - start),
        "wall_s": end - start,
        "tokens": sum(r["tokens"] for r in runs),
        "chunks": sum(r["chunks"] for r in runs),
        "max_streaming_at_once": most,
        "ttft_max_s": max(r["first"] - r["start"] for r in runs),
        "counted": runs[0]["counted"],
    }


def warm_up(port: int) -> None:
    stream(port, prompts("warm-up", 1)[0], 8)  # the first request loads the model


MEASURES = {
    "p2_ours": "P2  tllm serve, 1 request",
    "p2_peer": "P2  llama-cpp-python in-process",
    "p3_ours_1": "P3  tllm serve, 1 client",
    "p3_ours_n": "P3  tllm serve, {n} clients",
    "p3_peer_n": "P3  llama_cpp.server, {n} clients",
}


def medians(runs: list[dict]) -> dict:
    """Medians over rounds (the most streams at once: the maximum)."""
    out = {}
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and key not in ("start", "first", "last", "end"):
            values = [r[key] for r in runs]
            out[key] = max(values) if key == "max_streaming_at_once" else statistics.median(values)
    return {**out, "counted": runs[0]["counted"]}


def run_all(args, n_threads: int, n_threads_batch: int) -> tuple[dict, list[bool]]:
    from llama_cpp import Llama

    gguf = bundled_gguf()
    peer_python = Path(args.peer_python) if args.peer_python else ensure_server_peer()
    rounds: dict[str, list[dict]] = {k: [] for k in MEASURES}
    same_answer = []
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        env = dict(os.environ, TLLM_HOME=os.path.join(tmp, "home"))
        for key, value in [("context_length", N_CTX)] + [("threads", args.threads)] * bool(
            args.threads
        ):
            subprocess.run(
                [args.tllm, "config", "set", key, str(value)],
                env=env,
                check=True,
                capture_output=True,
            )
        ours_port, peer_port = free_port(), free_port()
        ours_cmd = [args.tllm, "serve", "--port", str(ours_port), "--no-ui"]
        peer_cmd = [
            str(peer_python),
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--n_ctx",
            str(N_CTX),
            "--n_threads",
            str(n_threads),
            "--n_threads_batch",
            str(n_threads_batch),
            "--host",
            "127.0.0.1",
            "--port",
            str(peer_port),
            "--interrupt_requests",
            "False",
            "--verbose",
            "False",
            "--n_gpu_layers",
            "-1",
        ]
        llm = Llama(
            model_path=str(gguf),
            n_ctx=N_CTX,
            n_batch=min(512, N_CTX),
            n_threads=n_threads,
            n_threads_batch=n_threads_batch,
            n_gpu_layers=-1,
            verbose=False,
        )  # as LlamaCppEngine does
        try:
            with (
                server(ours_cmd, env, ours_port, warm_up),
                server(peer_cmd, env, peer_port, warm_up),
            ):
                ours = lambda m: stream(ours_port, m, args.max_tokens)  # noqa: E731
                peer = lambda m: stream(peer_port, m, args.max_tokens)  # noqa: E731
                in_process(llm, prompts("warm-up", 1)[0], 8)
                for r in range(args.rounds):
                    question = prompts(f"p2-{r}", 1)[0]
                    rounds["p2_ours"].append(ours(question))
                    rounds["p2_peer"].append(in_process(llm, question, args.max_tokens))
                    same_answer.append(
                        rounds["p2_ours"][-1]["text"].strip()
                        == rounds["p2_peer"][-1]["text"].strip()
                    )
                    rounds["p3_ours_1"].append(
                        clients(ours, prompts(f"one-{r}", args.clients), False)
                    )
                    batch = prompts(f"many-{r}", args.clients)  # ours and the peer: the same
                    rounds["p3_ours_n"].append(clients(ours, batch, True))
                    rounds["p3_peer_n"].append(clients(peer, batch, True))
        finally:
            llm.close()
    return {k: medians(v) for k, v in rounds.items()}, same_answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every measure (default 3)")
    parser.add_argument(
        "--clients", type=int, default=8, help="concurrent clients for P3 (default 8)"
    )
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="pin llama.cpp threads (0: auto)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--peer-python",
        help="interpreter with llama-cpp-python[server] "
        "(default: bench/.venv-llm, made when missing)",
    )
    parser.add_argument(
        "--tllm", default=str(ours_bin()), help="our command (default: %(default)s)"
    )
    args = parser.parse_args()
    import llama_cpp

    load_before = os.getloadavg()
    n_threads, n_threads_batch = (args.threads, args.threads) if args.threads else auto_threads()
    m, same_answer = run_all(args, n_threads, n_threads_batch)
    ratios = {
        "p2_decode": m["p2_ours"]["decode_tok_s"] / m["p2_peer"]["decode_tok_s"],
        "p2_e2e": m["p2_ours"]["e2e_tok_s"] / m["p2_peer"]["e2e_tok_s"],
        "p3_vs_one_client": m["p3_ours_n"]["tok_s"] / m["p3_ours_1"]["tok_s"],
        "p3_vs_llama_cpp_server": m["p3_ours_n"]["tok_s"] / m["p3_peer_n"]["tok_s"],
    }
    targets = {
        "p2_decode": 0.95,
        "p2_e2e": 0.95,
        "p3_vs_one_client": 3,
        "p3_vs_llama_cpp_server": 2,
    }
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "rounds": args.rounds,
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "clients": args.clients,
        "max_tokens": args.max_tokens,
        "n_ctx": N_CTX,
        "threads": [n_threads, n_threads_batch],
        "ours_threads": args.threads or "auto",
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "p2_same_answer_rounds": sum(same_answer),
        "scheduling": SCHEDULING,
        "medians": m,
        "ratios": ratios,
        "targets": targets,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"serve bench: {args.rounds} rounds (medians), {report['cpus']} CPUs"
        f"{', every layer on the GPU' if report['gpu_offload'] else ''}, load average "
        f"{load_before[0]:.2f} -> {report['loadavg_after'][0]:.2f}; n_ctx {N_CTX}, max_tokens "
        f"{args.max_tokens}, temperature 0, N = {args.clients}; peers' threads {n_threads} "
        f"generation / {n_threads_batch} prompt, ours {'the same' if args.threads else 'auto'}"
    )
    for key, label in MEASURES.items():
        x = m[key]
        rate = (
            f"decode {x['decode_tok_s']:6.1f} tok/s, end-to-end {x['e2e_tok_s']:6.1f} tok/s"
            if key.startswith("p2")
            else f"aggregate {x['tok_s']:6.1f} tok/s, streams at once "
            f"<= {x['max_streaming_at_once']}, slowest first token {x['ttft_max_s']:.2f} s"
        )
        print(
            f"  {label.format(n=args.clients):35s} {rate}; {x['tokens']:.0f} tokens "
            f"by {x['counted']} ({x['chunks']:.0f} chunks)"
        )
    print(f"  P2: same answer from both in {sum(same_answer)} of {args.rounds} rounds")
    for key, ratio in ratios.items():
        verdict = "ok" if ratio >= targets[key] else "BELOW target"
        print(f"  ratio {key:24s} {ratio:5.2f}x  (target >= {targets[key]}x: {verdict})")
    for name, how in SCHEDULING.items():
        print(f"  scheduling, {name}: {how}")
    if max(load_before[0], report["loadavg_after"][0]) > report["cpus"] - 0.5:
        print(
            "  note: other processes held the CPUs (load average); end-to-end figures, which "
            "include the prompt, suffer most" + ("" if args.threads else "; try --threads 1")
        )


if __name__ == "__main__":
    main()
