#!/usr/bin/env python3
"""Import of a large alpaca JSONL file: `tllm data import` against `datasets.load_dataset("json")`.

The script writes an alpaca JSONL file of --rows rows (default 1,000,000) into a temporary
folder, then runs each tool in its own fresh process on that same file, so each one's peak
memory (ru_maxrss, from wait4) is its own:

  ours  `tllm data import FILE --kind chat --name N --json`: parse, convert to chat rows,
        validate every row, write data.jsonl, rejected.jsonl and card.json
  peer  `python -c "import datasets; datasets.load_dataset('json', data_files=FILE, split='train')"`
        with a fresh cache folder each run: parse and write its Arrow cache

Time is the whole process, start to exit (interpreter start and imports included: what a
user waits for); the peer also reports its load_dataset() call alone. Peak memory is the
largest single process (wait4's ru_maxrss covers a process and its reaped children, as a
maximum): on a big file ours runs one helper process per extra CPU (at most 3), each
about as large as the main one; the peer's Arrow parser runs threads in one process. After one warm-up of
each on a 1,000-row file (libraries into the OS file cache) the runs alternate, ours first
then the peer first (ours, peer, peer, ours, ...), and medians are compared. Targets: ours/peer rows per second >= 1.0, our peak
memory under 150 MB.

    .venv/bin/python bench/data_import.py [--rows 1000000] [--runs 3] [--json]

Standard library only (the tools run in their own processes with this interpreter).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEMORY_TARGET_MB = 150
PEER = """
import json, sys, time
start = time.perf_counter()
import datasets
imported = time.perf_counter()
rows = datasets.load_dataset("json", data_files=sys.argv[1], split="train", cache_dir=sys.argv[2])
print(json.dumps({"rows": len(rows), "import_s": imported - start, "load_s": time.perf_counter() - imported}))
"""
WORDS = (
    "the a an model data learn train answer question river city music number small large "
    "quick slow write read explain list give describe summarize translate poem story code "
    "function value table history science planet ocean mountain garden kitchen window "
    "because however therefore although während café naïve 数据 模型"
).split()
VERBS = ("Explain", "Describe", "List", "Summarize", "Write", "Translate", "Classify", "Give")


def write_alpaca(path: Path, rows: int, seed: int = 0) -> int:
    """An alpaca JSONL file like the real ones: short instructions, an input on about a third
    of the rows, answers of a sentence to a paragraph, a little non-ASCII text."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            instruction = (
                f"{rng.choice(VERBS)} "
                + " ".join(rng.choices(WORDS, k=rng.randint(4, 16)))
                + f" (#{i})."
            )
            extra = (
                " ".join(rng.choices(WORDS, k=rng.randint(5, 40))) if rng.random() < 0.35 else ""
            )
            output = " ".join(rng.choices(WORDS, k=rng.randint(8, 90))) + "."
            f.write(
                json.dumps(
                    {"instruction": instruction, "input": extra, "output": output},
                    ensure_ascii=False,
                )
                + "\n"
            )
    return path.stat().st_size


def ours_cmd(path: Path, name: str) -> list[str]:
    tllm = Path(sys.executable).parent / "tllm"
    base = [str(tllm)] if tllm.exists() else [sys.executable, "-m", "together_llm.cli.main"]
    return [*base, "data", "import", str(path), "--kind", "chat", "--name", name, "--json"]


def run_measured(cmd: list[str], env: dict) -> dict:
    """Run one process: its wall time, what it printed, and its own peak memory (reaped
    with os.wait4, whose rusage is this child's alone)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, text=True
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-2000:]}")
    return {
        "seconds": seconds,
        "peak_mb": usage.ru_maxrss / 1024,
        "stdout": stdout,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def run_ours(path: Path, rows: int, work: Path, env: dict, i: int) -> dict:
    home = work / "home"
    ours = run_measured(ours_cmd(path, f"run{i}"), {**env, "TLLM_HOME": str(home)})
    summary = json.loads(ours["stdout"])
    if summary["rows"] != rows or summary["rejected"]:
        sys.exit(
            f"ours imported {summary['rows']} rows, rejected {summary['rejected']}: expected {rows}, 0"
        )
    shutil.rmtree(home / "datasets" / f"run{i}")
    return ours


def run_peer(path: Path, rows: int, work: Path, env: dict, i: int) -> dict:
    cache = work / f"peer-cache-{i}"
    peer = run_measured([sys.executable, "-c", PEER, str(path), str(cache)], env)
    said = json.loads(peer["stdout"].strip().splitlines()[-1])
    if said["rows"] != rows:
        sys.exit(f"the peer loaded {said['rows']} rows, expected {rows}")
    peer["load_s"], peer["import_s"] = said["load_s"], said["import_s"]
    shutil.rmtree(cache)
    return peer


def measure(path: Path, rows: int, work: Path, env: dict, runs: int) -> dict:
    """`runs` runs of each, alternating which goes first (ours-peer, peer-ours, ...): the
    first big write after a pause is often the slow one, and neither tool should always
    take it."""
    results = {"ours": [], "peer": []}
    tools = {"ours": run_ours, "peer": run_peer}
    for i in range(runs):
        for name in ("ours", "peer") if i % 2 == 0 else ("peer", "ours"):
            results[name].append(tools[name](path, rows, work, env, i))
    report = {}
    for name, tries in results.items():
        seconds = statistics.median(t["seconds"] for t in tries)
        report[name] = {
            "median_s": seconds,
            "rows_per_s": rows / seconds,
            "times_s": [round(t["seconds"], 3) for t in tries],
            "peak_mb": max(t["peak_mb"] for t in tries),
            "cpu_s": statistics.median(t["cpu_s"] for t in tries),  # all its processes and threads
        }
        if name == "peer":
            report[name]["load_dataset_s"] = statistics.median(t["load_s"] for t in tries)
            report[name]["import_datasets_s"] = statistics.median(t["import_s"] for t in tries)
    report["ratio"] = report["ours"]["rows_per_s"] / report["peer"]["rows_per_s"]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows in the file (default 1,000,000)"
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each tool (default 3)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    env = dict(
        os.environ,
        HF_DATASETS_OFFLINE="1",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
    )  # ours shows none either off a terminal
    env.pop("TLLM_DEBUG", None)
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        size = write_alpaca(work / "alpaca.jsonl", args.rows)
        written_s = time.perf_counter() - started
        write_alpaca(work / "warm.jsonl", 1000, seed=1)
        measure(work / "warm.jsonl", 1000, work, env, 1)
        load_before = os.getloadavg()
        report = measure(work / "alpaca.jsonl", args.rows, work, env, args.runs)
    report.update(
        {
            "date": time.strftime("%Y-%m-%d"),
            "cpus": os.cpu_count(),
            "rows": args.rows,
            "runs": args.runs,
            "file_mb": round(size / 2**20, 1),
            "file_written_s": round(written_s, 1),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        }
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"import {args.rows:,} alpaca rows ({report['file_mb']} MB JSONL), {args.runs} alternating runs "
        f"each after a warm-up, {report['cpus']} CPUs, load average {report['loadavg_before'][0]:.2f} "
        f"-> {report['loadavg_after'][0]:.2f}"
    )
    for name, label in (
        ("ours", "tllm data import (validated)"),
        ("peer", "datasets.load_dataset('json')"),
    ):
        r = report[name]
        print(
            f"  {name}  {label:<31} median {r['median_s']:6.2f} s  {r['rows_per_s']:>9,.0f} rows/s  "
            f"peak {r['peak_mb']:5.0f} MB  CPU {r['cpu_s']:5.2f} s   runs {r['times_s']}"
        )
    peer = report["peer"]
    print(
        f"  (peer: import datasets {peer['import_datasets_s']:.2f} s, load_dataset() {peer['load_dataset_s']:.2f} s; "
        "peak memory is the largest single process, ours runs one per CPU on a big file)"
    )
    speed = "ok" if report["ratio"] >= 1.0 else "SLOWER than the peer"
    memory = "ok" if report["ours"]["peak_mb"] < MEMORY_TARGET_MB else "OVER"
    print(
        f"  ratio ours/peer rows/s {report['ratio']:.2f}x (target >= 1.0: {speed}); "
        f"our peak memory {report['ours']['peak_mb']:.0f} MB (target < {MEMORY_TARGET_MB}: {memory})"
    )
    if 0.9 <= report["ratio"] <= 1.1:
        print(
            "  note: the ratio is within 10% of 1; on a shared machine rerun before reading much into it"
        )


if __name__ == "__main__":
    main()
