#!/usr/bin/env python3
"""The personal loop (issue 18): three rounds of `tllm remember` (two memories a round, the
teacher on) + `tllm improve`, against the same rounds learned without replay
(`tllm improve --no-replay --max-regression 1`: plain sequential fine-tuning, adopted
whenever it learns the new facts).

    .venv/bin/python bench/improve.py [--json] [--tllm PATH]

Per round and side it prints: the questions made per memory (taught / held out, and the
teacher's dropped), training seconds, improve's own held-out scores (new, earlier, general)
and whether it adopted, the journey's held-out questions answered right per round so far
(bench/journeys/memories.py, in words of their own), and the wall time from the first
`remember` of the round to the end of `improve`. Target (Personalization): a memory to a
held-out-correct answer in under 3 CPU-minutes on a 2-core machine; the first round's
memories at >= 0.85 of their first rate after three rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.journeys.memories import GENERAL, ROUNDS, held_out_questions, rates  # noqa: E402


def tllm(bin_: str, home: Path, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "TLLM_HOME": str(home)}
    done = subprocess.run(
        [bin_, *args], input=stdin, capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"tllm {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def journey(bin_: str, home: Path) -> tuple[list[float], list[bool]]:
    questions = held_out_questions() + [q for q, _ in GENERAL]
    out = tllm(
        bin_,
        home,
        "chat",
        "--json",
        "--temperature",
        "0",
        "--max-tokens",
        "32",
        stdin="\n/reset\n".join(questions) + "\n",
    )
    return rates([json.loads(line)["text"] for line in out.splitlines()])


def side(bin_: str, home: Path, flags: list[str], label: str) -> list[dict]:
    tllm(bin_, home, "models", "convert", "default")
    rounds = []
    for number, round_ in enumerate(ROUNDS, start=1):
        started = time.perf_counter()
        made = []
        for memory, _, _ in round_:
            stored = json.loads(tllm(bin_, home, "remember", memory, "--json"))
            made.append(
                {
                    "taught": len(stored["train"]),
                    "held_out": len(stored["held_out"]),
                    "teacher_kept": sum(
                        p["source"] != "pattern" for p in stored["train"] + stored["held_out"]
                    ),
                    "teacher_dropped": sum(stored["dropped"].values()),
                }
            )
        outcome = json.loads(tllm(bin_, home, "improve", "--json", *flags))
        wall = time.perf_counter() - started
        per_round, general = journey(bin_, home)
        row = {
            "side": label,
            "round": number,
            "questions_per_memory": made,
            "train_seconds": outcome["train_seconds"],
            "wall_seconds": round(wall, 1),
            "adopted": outcome["adopted"],
            "scores": {k: v.get("candidate") for k, v in outcome["scores"].items()},
            "journey_right_per_round": per_round[:number],
            "journey_general_right": sum(general),
        }
        rounds.append(row)
        print(json.dumps(row), file=sys.stderr)
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tllm", default=str(ROOT / ".venv" / "bin" / "tllm"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-improve-") as scratch:
        ours = side(args.tllm, Path(scratch) / "replay", [], "improve")
        plain = side(
            args.tllm,
            Path(scratch) / "plain",
            ["--no-replay", "--max-regression", "1"],
            "no replay",
        )
    if args.json:
        print(json.dumps({"improve": ours, "no_replay": plain}, indent=2))
        return
    for row in ours + plain:
        scores = "  ".join(f"{k} {100 * v:.0f}%" for k, v in row["scores"].items() if v is not None)
        journey_rates = " / ".join(f"{100 * r:.0f}%" for r in row["journey_right_per_round"])
        made = ", ".join(f"{m['taught']}+{m['held_out']}" for m in row["questions_per_memory"])
        print(
            f"{row['side']:<9} round {row['round']}: questions per memory (taught+held out) "
            f"{made}; trained {row['train_seconds']} s, remember+improve {row['wall_seconds']} s; "
            f"{'adopted' if row['adopted'] else 'NOT adopted'}; improve's held-out: {scores}; "
            f"journey per round: {journey_rates}; general {row['journey_general_right']}/"
            f"{len(GENERAL)}"
        )
    first, last = ours[0]["journey_right_per_round"][0], ours[-1]["journey_right_per_round"][0]
    plain_last = plain[-1]["journey_right_per_round"][0]
    print(
        f"first round's memories after three rounds: improve {100 * last:.0f}% "
        f"({last / first if first else 0:.2f} of its first {100 * first:.0f}%), "
        f"no replay {100 * plain_last:.0f}%"
    )


if __name__ == "__main__":
    main()
