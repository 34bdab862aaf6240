"""The co-evolution journey, run as users run it (shared by the test and bench/together.py):

1. four peer homes, one a topic (coevolution_data), each importing its own conversations
   with its topic's held-out paraphrases as its eval split; the coordinator's home holds the
   union, with every paraphrase as its eval split (the federation's global held-out set);
2. `tllm train` on the coordinator's union: the centralized adapter;
3. `tllm train` in each peer's home on its own rows only: the four local-only adapters;
4. `tllm together simulate --homes` the four peers: the federated adapter;
5. every held-out paraphrase asked of each adapter (coevolution_data.answer_all).

The budget is the same for all: each method sees the same number of examples. A federated
round trains each of the four peers `local_steps` steps of `batch_size` rows; by default one
plain gradient step on 2 rows, sent as an int8 update, and the server takes one Adam step
on the mean of the four (FedOpt: Flower's FedAdam). Centralized training sees as many rows in
steps of `central_batch_size` (by default 40 AdamW steps of 8 rows: as many steps as the
federation has rounds, each on as many rows as the four peers' batches together; with
`central_batch_size` 0, exactly that). Each local-only adapter gets the rows its peer
trained on in the federation (rounds x local_steps AdamW steps of batch_size rows).

Training processes run on one torch thread each, two at a time (the central run beside the
local-only ones, the federation's two Ray workers): on two cores shared with other work,
one process's two OpenMP threads spin waiting for a busy core (5-8x slower measured).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from together_llm.home import Home

from . import coevolution_data as data

ROOT = Path(__file__).resolve().parents[2]
DATA = "facts"  # every home's dataset name: its own rows
FEDERATED, CENTRAL = "together", "central"


@dataclass(frozen=True)
class Budget:
    rounds: int = 40
    local_steps: int = 1
    batch_size: int = 2
    rank: int = 16
    alpha: float = 32.0
    targets: str = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    central_lr: float = 2e-3
    central_batch_size: int = 8  # 0: 4 x batch_size (as many optimizer steps as the federation)
    # the federation: FedOpt (server-side Adam on the mean update; each peer one plain
    # gradient step a round), the updates sent as int8
    strategy: str = "fedadam"
    server_lr: float = 2e-3
    optimizer: str = "sgd"
    federated_lr: float = 1.0
    transport: str = "int8"
    aggregate: str = "mean"  # tllm together simulate --aggregate
    eval_every: int = 10
    max_length: int = 96
    seed: int = 7

    @property
    def peer_steps(self) -> int:
        """Steps each peer trains in the whole federation (and its local-only adapter)."""
        return self.rounds * self.local_steps

    @property
    def central_batch(self) -> int:
        return self.central_batch_size or len(data.TOPICS) * self.batch_size

    @property
    def central_steps(self) -> int:
        """As many rows as the four peers train on in the federation."""
        return max(1, len(data.TOPICS) * self.peer_steps * self.batch_size // self.central_batch)

    def fed_flags(self) -> list[str]:
        return [
            "--aggregate",
            self.aggregate,
            "--strategy",
            self.strategy,
            "--server-lr",
            str(self.server_lr),
            "--optimizer",
            self.optimizer,
            "--transport",
            self.transport,
            "--eval-every",
            str(self.eval_every),
        ]

    def lora_flags(self) -> list[str]:
        return [
            "--rank",
            str(self.rank),
            "--target-modules",
            self.targets,
            "--max-length",
            str(self.max_length),
            "--seed",
            str(self.seed),
        ]


def tllm(*args, home: Path, wait: bool = True):
    """`tllm ARGS` in a subprocess on one torch thread (a Popen when not `wait`)."""
    env = {**os.environ, "TLLM_HOME": str(home), "OMP_NUM_THREADS": "1"}
    env.pop("TLLM_DEBUG", None)
    command = [sys.executable, "-m", "together_llm.cli.main", *map(str, args)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    return finished(process, args) if wait else (process, args)


def finished(process, args, timeout: float = 1800) -> str:
    out, err = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise AssertionError(f"tllm {' '.join(map(str, args[:3]))} failed:\n{err[-3000:]}")
    return out


def write_dataset(
    home: Home, train: list[tuple[str, str]], held: list[tuple[str, str]], system_prompt: str
) -> None:
    """Dataset DATA of `home`: `train` rows in its train split and `held` rows in its eval
    split, laid out as `tllm data split` lays them out (which would pick the eval rows at
    random; here they must be the paraphrases)."""
    from together_llm.data.store import DatasetWriter, open_dataset

    rows = {
        "train": [data.chat_row(q, a, system_prompt) for q, a in train],
        "eval": [data.chat_row(q, a, system_prompt) for q, a in held],
    }
    with DatasetWriter(
        home, DATA, "chat", source="coevolution journey", format="chat", overwrite=True
    ) as out:
        for row in rows["train"] + rows["eval"]:
            out.add(row)
        out.commit()
    dataset = open_dataset(home, DATA)
    for split, split_rows in rows.items():
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in split_rows)
        (dataset.folder / f"{split}.jsonl").write_text(lines, encoding="utf-8")
    dataset.card["split"] = {
        "train": len(rows["train"]),
        "eval": len(rows["eval"]),
        "seed": 0,
        "eval_fraction": round(len(rows["eval"]) / len(rows["train"] + rows["eval"]), 6),
    }
    dataset.save_card()


def make_homes(coordinator: Home, workdir: Path) -> dict[str, Home]:
    """One peer home a topic (on the coordinator's converted base, linked, not copied) and
    the coordinator's union; returns topic -> peer home."""
    from together_llm.together.peers import link_base

    system_prompt = coordinator.load_config().system_prompt  # what `tllm ask` sends

    def answer(probes):
        return [(q, fact.answer) for q, fact in probes]

    peers = {}
    for topic in data.TOPICS:
        peer = Home.open(workdir / f"peer-{topic}")
        link_base(peer, "default", coordinator.models_dir / "default")
        write_dataset(
            peer, data.training_pairs(topic), answer(data.held_out([topic])), system_prompt
        )
        peers[topic] = peer
    union = [pair for topic in data.TOPICS for pair in data.training_pairs(topic)]
    write_dataset(coordinator, union, answer(data.held_out()), system_prompt)
    return peers


def train_flags(budget: Budget, name: str, steps: int, lr: float, batch: int) -> list:
    return [
        "train",
        "--data",
        DATA,
        "--stage",
        "sft",
        "--method",
        "lora",
        "--name",
        name,
        "--overwrite",
        *budget.lora_flags(),
        "--alpha",
        budget.alpha,
        "--lr",
        lr,
        "--batch-size",
        batch,
        "--max-steps",
        steps,
        "--warmup-ratio",
        "0.1",
        "--save-every",
        "0",
        "--logging-every",
        steps,
    ]


def train_central_and_local(coordinator: Home, peers: dict[str, Home], budget: Budget) -> dict:
    """The centralized adapter beside the four local-only ones (one after another), two
    processes at a time; returns their wall times in seconds."""
    start = time.perf_counter()
    central = tllm(
        *train_flags(
            budget, CENTRAL, budget.central_steps, budget.central_lr, budget.central_batch
        ),
        home=coordinator.path,
        wait=False,
    )
    for peer in peers.values():
        tllm(
            *train_flags(
                budget, "local-only", budget.peer_steps, budget.central_lr, budget.batch_size
            ),
            home=peer.path,
        )
    local_seconds = time.perf_counter() - start
    finished(*central)
    return {"local_only_s": local_seconds, "central_s": time.perf_counter() - start}


def federate(coordinator: Home, peers: dict[str, Home], budget: Budget) -> dict:
    """`tllm together simulate --homes` the four peers; returns its JSON summary."""
    out = tllm(
        "together",
        "simulate",
        "--homes",
        ",".join(str(p.path) for p in peers.values()),
        "--data",
        DATA,
        "--name",
        FEDERATED,
        "--rounds",
        budget.rounds,
        "--local-steps",
        budget.local_steps,
        "--lr",
        budget.federated_lr,
        *budget.fed_flags(),
        "--lora-alpha",
        budget.alpha,
        "--batch-size",
        budget.batch_size,
        *budget.lora_flags(),
        "--overwrite",
        "--json",
        home=coordinator.path,
    )
    return json.loads(out)


def run_journey(coordinator: Home, workdir: Path, budget: Budget) -> dict:
    """Everything above; returns held-out scores per adapter and what each step took."""
    import torch

    peers = make_homes(coordinator, workdir)
    times = train_central_and_local(coordinator, peers, budget)
    start = time.perf_counter()
    summary = federate(coordinator, peers, budget)
    times["federated_s"] = time.perf_counter() - start

    adapters = {
        "central": coordinator.adapters_dir / CENTRAL,
        "federated": peers["maren"].adapters_dir / FEDERATED,
        **{f"local-{t}": p.adapters_dir / "local-only" for t, p in peers.items()},
    }
    probes = data.held_out()
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        answers = data.answer_all(
            coordinator.models_dir / "default",
            adapters,
            [q for q, _ in probes],
            coordinator.load_config().system_prompt,
        )
    finally:
        torch.set_num_threads(threads)
    times["answers_s"] = time.perf_counter() - start
    return {
        "budget": asdict(budget),
        "questions": len(probes),
        "summary": summary,
        "peers": {t: str(p.path) for t, p in peers.items()},
        "probes": probes,
        "answers": answers,
        "scores": {k: data.score(v, probes) for k, v in answers.items()},
        "times": times,
    }
