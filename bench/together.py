#!/usr/bin/env python3
"""P6: federated LoRA against centralized training, on the bundled model.

The co-evolution journey of bench/journeys (coevolution_run.py, its facts in coevolution_data.py):
four peers each hold five facts on a topic of their own (a person, a village, a company, a
band) plus everyday conversations; 40 held-out paraphrases span the four topics. Three ways
to train with the same budget (examples seen):

  federated    `tllm together simulate --homes` the four peers: R rounds, each peer K
               plain gradient steps of B rows a round (--optimizer sgd), its update sent as
               int8, the server's Adam on their mean (--strategy fedadam; Flower simulation)
  centralized  `tllm train` on the union of the four datasets: 4 x R x K x B / C AdamW
               steps of C rows (--central-batch-size, default 8: R x K steps when B is 2)
  local-only   `tllm train` in each peer's home on its own rows: R x K AdamW steps of B rows

Figures: P6 = held-out questions the federated adapter answers / those the centralized one
answers (target >= 0.95), the local-only adapters' answers beside them, the bytes each peer
uploads per round / the base model's size (its safetensors in the home, fp32; target
<= 1%), and the wall time per round (the federation's seconds /
rounds, Flower's and Ray's overhead included). A correct answer names its fact's key and
no other fact's.

    .venv/bin/python bench/together.py [--rounds 40] [--transport int8] [--strategy fedadam]
                                       [--server-lr X] [--home DIR] [--json]

--home reuses a home whose default model is already converted (else a temporary one is
made and the bundled GGUF converted, about a minute).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def base_bytes(hf_dir: Path) -> int:
    return sum(p.stat().st_size for p in hf_dir.glob("*.safetensors"))


def rounds_of(run_dir: Path) -> list[dict]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r.get("round", 0) > 0]


def figures(result: dict, coordinator, budget) -> dict:
    scores, questions = result["scores"], result["questions"]
    summary = result["summary"]
    rounds = rounds_of(coordinator.path / "together" / summary["run_id"])
    uploads = [
        peer["bytes_up"] for r in rounds for peer in r["peers"].values() if "bytes_up" in peer
    ]
    size = base_bytes(coordinator.models_dir / "default")
    central, federated = scores["central"]["all"], scores["federated"]["all"]
    local = {
        label.removeprefix("local-"): s["all"]
        for label, s in scores.items()
        if label.startswith("local-")
    }
    return {
        "budget": result["budget"],
        "questions": questions,
        "central_steps": budget.central_steps,
        "central_batch": budget.central_batch,
        "central": central,
        "federated": federated,
        "local_only": local,
        "local_only_mean": sum(local.values()) / len(local),
        "per_topic": scores,
        "p6": federated / central if central else 0.0,
        "p6_target": 0.95,
        "upload_bytes_per_peer_round": max(uploads),
        "base_bytes": size,
        "upload_fraction": max(uploads) / size,
        "upload_target": 0.01,
        "round_seconds": [r["seconds"] for r in rounds],
        "round_seconds_mean": sum(r["seconds"] for r in rounds) / len(rounds),
        "federation_seconds": result["times"]["federated_s"],
        "central_seconds": result["times"]["central_s"],
        "times": result["times"],
        "final_global_eval_loss": rounds[-1].get("global_eval_loss"),
    }


def show(report: dict) -> None:
    b = report["budget"]
    q = report["questions"]
    print(
        f"P6 federated LoRA, bundled model, 4 peers x 1 topic; {b['rounds']} rounds x "
        f"{b['local_steps']} local {b['optimizer']} steps x {b['batch_size']} rows "
        f"({b['strategy']}, server lr {b['server_lr']:g}, {b['transport']} updates, "
        f"{b['aggregate']}); "
        f"centralized {report['central_steps']} steps x {report['central_batch']} rows; "
        f"rank {b['rank']}, lr central {b['central_lr']:g} / federated {b['federated_lr']:g}"
    )
    print(f"{'adapter':<16} {'answers':>8}   per topic")
    for label, s in report["per_topic"].items():
        topics = "  ".join(f"{k} {v}" for k, v in s.items() if k != "all")
        print(f"{label:<16} {s['all']:>5}/{q}   {topics}")
    print(
        f"P6 federated / centralized: {report['federated']}/{report['central']} = "
        f"{report['p6']:.2f} (target >= 0.95); local-only mean {report['local_only_mean']:.1f} "
        f"= {report['local_only_mean'] / max(report['central'], 1):.2f} of centralized"
    )
    print(
        f"upload per peer per round: {report['upload_bytes_per_peer_round'] / 1e6:.2f} MB of a "
        f"{report['base_bytes'] / 1e6:.0f} MB base = {report['upload_fraction']:.2%} (target <= 1%)"
    )
    print(
        f"wall time per round: {report['round_seconds_mean']:.1f} s (rounds "
        f"{', '.join(f'{s:.0f}' for s in report['round_seconds'])}); whole federation "
        f"{report['federation_seconds']:.0f} s, centralized training {report['central_seconds']:.0f} s "
        f"(beside the local-only runs); the whole journey {report['journey_seconds']:.0f} s"
    )


def main() -> None:
    from bench.journeys.coevolution_run import Budget, run_journey
    from together_llm.home import Home

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in fields(Budget):
        parser.add_argument(
            "--" + f.name.replace("_", "-"), type=type(f.default), default=f.default
        )
    parser.add_argument("--home", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    budget = Budget(**{f.name: getattr(args, f.name) for f in fields(Budget)})

    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        coordinator = Home.open(home)
        if not (coordinator.models_dir / "default" / "config.json").is_file():
            print("converting the bundled model (once)...", file=sys.stderr)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "together_llm.cli.main",
                    "--home",
                    str(home),
                    "models",
                    "convert",
                    "default",
                ],
                check=True,
                cwd=ROOT,
            )
        start = time.perf_counter()
        result = run_journey(coordinator, Path(tmp) / "peers", budget)
        report = figures(result, coordinator, budget)
        report["journey_seconds"] = time.perf_counter() - start
    if args.json:
        print(json.dumps(report, indent=2))
        return
    show(report)


if __name__ == "__main__":
    main()
