#!/usr/bin/env python3
"""P4: LoRA SFT speed on the bundled model, `tllm train` against a plain Trainer + PEFT script.

Both sides train the same LoRA (rank --rank on q_proj and v_proj, alpha 2 x rank, dropout
0.05, lr 2e-4, fp32 weights) for --steps optimizer steps of --batch-size conversations, on the same
tokenized examples (train/inputs/encode.encode_chat: the chat template, loss on the assistant's
turns only), each in its own fresh process so its peak memory (ru_maxrss) is its own:

  ours      together_llm.train.run.train with its defaults: each micro-batch sorted by
            length and split into groups padded by at most an eighth, one forward pass
            each, logits only where a token is learned, and (precision auto) bf16 matrix
            products where the CPU multiplies bf16 fast (AVX512-BF16 or AMX)
  baseline  transformers.Trainer + peft.get_peft_model in fp32, batches padded to their
            longest (DataCollatorForSeq2Seq), the way a plain fine-tuning script does it

The figure is non-padding tokens per second of training (model loading excluded on both
sides); the ratio ours / baseline is the P4 target (>= 2). Each side's share of this
machine's measured matrix-multiply peak (fp32, or bf16 for a bf16 side) counts 4 x parameters FLOPs per real token
(a forward pass and the backward pass to the activations; the frozen base needs no weight
gradients). The conversations are synthetic, alpaca-like: short questions, answers from a
sentence to a few paragraphs.

    .venv/bin/python bench/train_lora.py [--steps 20] [--batch-size 8] [--rank 8]
                                         [--home DIR] [--json]

--home reuses a home whose default model is already converted (else a temporary one is
made and the bundled GGUF converted, about a minute).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = "bench-chats"
WORDS = (
    "the a model data learn train answer question river city music number small large "
    "quick slow write read explain list give describe summary poem story code function "
    "value table history science planet ocean mountain garden kitchen window because "
    "however therefore although simple careful"
).split()


def conversations(count: int, seed: int = 0) -> list[dict]:
    """Questions of 5 to 30 words; answers log-normal around 60 words, from a few words to a
    few paragraphs (700 words at most), the long-tailed shape of alpaca-style answers."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))) + "?"
        words = int(min(700, max(3, math.exp(rng.gauss(math.log(60), 0.9)))))
        answer = " ".join(rng.choice(WORDS) for _ in range(words)) + "."
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": question.capitalize()},
                    {"role": "assistant", "content": answer.capitalize()},
                ]
            }
        )
    return rows


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------ sides


def side_ours(home: Path, args) -> dict:
    from together_llm.home import Home
    from together_llm.train.recipe import load_recipe
    from together_llm.train.run import train

    recipe = load_recipe(
        None,
        {
            "data": DATA,
            "name": "bench-ours",
            "base": "default",
            "overwrite": True,
            "max_steps": args.steps,
            "batch_size": args.batch_size,
            "rank": args.rank,
            "alpha": 2 * args.rank,
            "lr": 2e-4,
            "seed": 0,
            "save_every": 0,
            "logging_every": args.steps,
            "max_length": 1024,
        },
    )
    metrics = train(Home.open(home), recipe)
    return {
        "tokens": metrics["tokens"],
        "seconds": metrics["seconds"],
        "label_tokens": metrics["label_tokens"],
        "loss": metrics["train_loss"],
        "precision": metrics["precision"],
    }


def side_baseline(home: Path, args) -> dict:
    import datasets
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )

    from together_llm.data.store import open_dataset
    from together_llm.home import Home
    from together_llm.train.inputs.encode import encode_rows

    hf_dir = Home.open(home).models_dir / "default"
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(
            task_type="CAUSAL_LM",
            r=args.rank,
            lora_alpha=2 * args.rank,
            lora_dropout=0.05,
            target_modules=["q_proj", "v_proj"],
        ),
    )
    rows = open_dataset(Home.open(home), DATA).rows()
    examples = encode_rows("chat", rows, tokenizer, 1024)
    padder = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    seen = {"tokens": 0, "labels": 0}

    def collate(features):
        batch = padder(features)
        seen["padded"] = seen.get("padded", 0) + batch["attention_mask"].numel()
        seen["tokens"] += int(batch["attention_mask"].sum())
        seen["labels"] += int((batch["labels"][:, 1:] != -100).sum())
        return batch

    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(
            model=model,
            train_dataset=datasets.Dataset.from_list(examples),
            data_collator=collate,
            args=TrainingArguments(
                output_dir=out,
                per_device_train_batch_size=args.batch_size,
                max_steps=args.steps,
                learning_rate=2e-4,
                lr_scheduler_type="cosine",
                logging_steps=args.steps,
                save_strategy="no",
                report_to=[],
                seed=0,
                use_cpu=True,
                disable_tqdm=True,
                dataloader_num_workers=0,
            ),
        )
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
    return {
        "tokens": seen["tokens"],
        "seconds": seconds,
        "label_tokens": seen["labels"],
        "loss": result.training_loss,
        "padding_factor": seen["padded"] / seen["tokens"],
        "precision": "fp32",
    }


def side_matmul(home: Path, args) -> dict:
    """This machine's fp32 and bf16 matrix-multiply rates (FLOP/s), and the model's
    parameter count."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from together_llm.home import Home

    n = 2048
    rates = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        for _ in range(3):
            a @ b
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(4):
                a @ b
            best = min(best, (time.perf_counter() - start) / 4)
        rates[name] = 2 * n**3 / best
    config = AutoConfig.from_pretrained(Home.open(home).models_dir / "default")
    with torch.device("meta"):
        params = AutoModelForCausalLM.from_config(config).num_parameters()
    return {"flops": rates, "params": params}


SIDES = {"ours": side_ours, "baseline": side_baseline, "matmul": side_matmul}


# ----------------------------------------------------------------------------- driver


def run_side(name: str, home: Path, args) -> dict:
    command = [
        sys.executable,
        __file__,
        "--side",
        name,
        "--home",
        str(home),
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--rank",
        str(args.rank),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"{name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def prepare(home: Path) -> None:
    """Convert the bundled model (once) and write the conversations as a dataset."""
    from together_llm.data.store import DatasetWriter
    from together_llm.home import Home

    opened = Home.open(home)
    if not (opened.models_dir / "default" / "config.json").is_file():
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
    with DatasetWriter(opened, DATA, "chat", source="bench", format="chat", overwrite=True) as out:
        for row in conversations(1000):
            out.add(row)
        out.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        figures = SIDES[args.side](args.home, args)
        print(json.dumps({**figures, "peak_mb": peak_mb()}))
        return

    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        prepare(home)
        machine = run_side("matmul", home, args)
        # Baseline first, then ours, then both again: medians of two runs each.
        runs = {"baseline": [], "ours": []}
        for name in ("baseline", "ours", "ours", "baseline"):
            runs[name].append(run_side(name, home, args))

    results = {}
    for name, found in runs.items():
        speeds = sorted(r["tokens"] / r["seconds"] for r in found)
        speed = sum(speeds) / len(speeds)
        results[name] = {
            "tokens_per_s": speed,
            "runs_tokens_per_s": speeds,
            "tokens": found[0]["tokens"],
            "label_tokens": found[0]["label_tokens"],
            "peak_mb": max(r["peak_mb"] for r in found),
            "loss": found[0]["loss"],
            "precision": found[0]["precision"],
            "peak_fraction": 4
            * machine["params"]
            * speed
            / machine["flops"][found[0]["precision"]],
        }
    ratio = results["ours"]["tokens_per_s"] / results["baseline"]["tokens_per_s"]
    padding = runs["baseline"][0]["padding_factor"]
    report = {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "rank": args.rank,
        "matmul_gflops": {k: v / 1e9 for k, v in machine["flops"].items()},
        "params": machine["params"],
        "baseline_padding_factor": padding,
        **results,
        "ratio": ratio,
        "target": 2.0,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    peaks = ", ".join(f"{k} {v / 1e9:.0f}" for k, v in machine["flops"].items())
    print(
        f"P4 LoRA SFT, bundled model, {args.steps} steps x {args.batch_size} conversations, "
        f"rank {args.rank}; matmul peak GFLOP/s: {peaks}"
    )
    print(
        f"{'':10} {'products':>8} {'tokens/s':>10} {'tokens':>8} {'peak MB':>8} {'of peak':>8} {'loss':>7}"
    )
    for name in ("ours", "baseline"):
        r = results[name]
        print(
            f"{name:10} {r['precision']:>8} {r['tokens_per_s']:10.0f} {r['tokens']:8d} "
            f"{r['peak_mb']:8.0f} {r['peak_fraction']:8.1%} {r['loss']:7.3f}"
        )
    print(f"the baseline's padded batches hold {padding:.2f}x their real tokens")
    print(f"ratio ours / baseline: {ratio:.2f}x (target >= 2.0x)")


if __name__ == "__main__":
    main()
