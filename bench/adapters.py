#!/usr/bin/env python3
"""Serving trained adapters (issue 17): P7, one streaming client on an adapter through
`tllm serve` against the base model through the same server; P8, 8 streaming clients spread
over 4 adapters against 8 on the base, and the server's resident memory with 4 adapters
active against the base alone.

    .venv/bin/python bench/adapters.py [--rounds 3] [--max-tokens 128] [--json] [--tllm PATH]

The bench makes a throwaway home on the bundled SmolLM2-135M GGUF, writes four small chat
datasets (a different made-up fact each) and trains four LoRA adapters with `tllm train` (a
few steps: speed, not quality, is measured; training writes each adapter's GGUF LoRA). Then
one `tllm serve` on 127.0.0.1 answers every request; rounds interleave the base and the
adapters. Requests, timing and token counts are bench/serve.py's (temperature 0, the last
chunk's usage). Memory: VmRSS of the server process after warming the base only, then after
warming the four adapters.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
from ask_cold import ours_bin  # noqa: E402  (bench/ is sys.path[0])
from serve import clients, medians, prompts, stream  # noqa: E402
from serve_processes import free_port, server  # noqa: E402

N_CTX = 2048
ADAPTERS = ("ada", "bea", "cid", "dov")
PETS = ("a heron", "a tortoise", "a ferret", "an axolotl")


def rss_mib(pid: int) -> float:
    """The process's resident memory (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def tllm(args, env: dict, *command: str) -> None:
    done = subprocess.run([args.tllm, *command], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"tllm {' '.join(command)} failed: {done.stderr[-1500:]}")


def train_adapters(args, env: dict, folder: Path) -> None:
    """Four adapters, each taught a fact of its own in a few steps."""
    for name, pet in zip(ADAPTERS, PETS):
        rows = [
            {
                "messages": [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": f"My pet is {pet} called {name.title()}."},
                ]
            }
            for question in ("What is your pet?", "Tell me about your pet.", "Any pets?")
        ]
        data = folder / f"{name}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        tllm(args, env, "data", "import", str(data), "--kind", "chat", "--name", name)
        tllm(args, env, "train", "--data", name, "--name", name, "--max-steps", "4",
             "--batch-size", "2", "--max-length", "64")  # fmt: skip


def spread(port: int, max_tokens: int, models: dict):
    """A client asking each question of the batch on the adapter `models` names for it."""
    return lambda messages: stream(port, messages, max_tokens, models[id(messages)])


def run_all(args) -> dict:
    rounds: dict[str, list[dict]] = {"p7_base": [], "p7_adapter": [], "p8_base": [], "p8_four": []}
    memory: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-adapters-") as tmp:
        env = dict(os.environ, TLLM_HOME=os.path.join(tmp, "home"))
        tllm(args, env, "config", "set", "context_length", str(N_CTX))
        train_adapters(args, env, Path(tmp))
        port, started = free_port(), []
        command = [args.tllm, "serve", "--port", str(port), "--no-ui"]
        with server(command, env, port, lambda p: stream(p, prompts("warm", 1)[0], 8), started):
            pid = started[0].pid
            memory["base"] = rss_mib(pid)
            for name in ADAPTERS:  # the first request to each opens it
                stream(port, prompts(f"warm-{name}", 1)[0], 8, model=name)
            memory["four_adapters"] = rss_mib(pid)
            for r in range(args.rounds):
                question = prompts(f"p7-{r}", 1)[0]
                rounds["p7_base"].append(stream(port, question, args.max_tokens))
                rounds["p7_adapter"].append(stream(port, question, args.max_tokens, ADAPTERS[0]))
                batch = prompts(f"p8-{r}", 8)
                on_base = lambda m: stream(port, m, args.max_tokens)  # noqa: E731
                rounds["p8_base"].append(clients(on_base, batch, True))
                models = dict(zip(map(id, batch), ADAPTERS * 2))  # two clients each
                on_adapters = spread(port, args.max_tokens, models)
                rounds["p8_four"].append(clients(on_adapters, batch, True))
    return {"medians": {k: medians(v) for k, v in rounds.items()}, "memory_mib": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--tllm", default=str(ours_bin()), help="our command (%(default)s)")
    args = parser.parse_args()
    found = run_all(args)
    m, memory = found["medians"], found["memory_mib"]
    ratios = {
        "p7_decode": m["p7_adapter"]["decode_tok_s"] / m["p7_base"]["decode_tok_s"],
        "p8_aggregate": m["p8_four"]["tok_s"] / m["p8_base"]["tok_s"],
        "p8_memory": memory["four_adapters"] / memory["base"],
    }
    targets = {"p7_decode": (">=", 0.90), "p8_aggregate": (">=", 0.80), "p8_memory": ("<=", 1.25)}
    report = {"ratios": ratios, "targets": targets, **found}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for key, ratio in ratios.items():
        sign, target = targets[key]
        met = ratio >= target if sign == ">=" else ratio <= target
        print(
            f"{key:<14} {ratio:6.2f}   target {sign} {target:.2f}   {'met' if met else 'NOT met'}"
        )
    print(
        f"decode tok/s: base {m['p7_base']['decode_tok_s']:.1f}, adapter "
        f"{m['p7_adapter']['decode_tok_s']:.1f}; 8 clients: base {m['p8_base']['tok_s']:.1f}, "
        f"4 adapters {m['p8_four']['tok_s']:.1f}; memory MiB: base {memory['base']:.0f}, "
        f"4 adapters {memory['four_adapters']:.0f}"
    )
    print(f"(medians of {args.rounds} rounds, one server)")


if __name__ == "__main__":
    main()
