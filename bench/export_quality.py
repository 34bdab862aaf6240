#!/usr/bin/env python3
"""P5: how much quality a GGUF export loses. Perplexity of the q8_0 and q4_k_m GGUF files
that `tllm export` writes, each divided by the perplexity of the Hugging Face model they
were converted from (the export's own merged `hf/`), on held-out text this script writes.
Targets: q8_0 <= 1.01, q4_k_m <= 1.10. Also the files' sizes and generation tokens/s.

    .venv/bin/python bench/export_quality.py [--home DIR] [--adapter A] [--window 256] [--json]

Without --home, a throwaway home is made and the bundled model converted into it (about a
minute). With --adapter, the export merges that adapter first (the adapter must be in the
home). Nothing is downloaded; the converter must be fetched (scripts/fetch-converter).

Fairness: the three models score the same token ids (the HF tokenizer's, which the GGUF's
tokenizer reproduces), in the same windows, each window scored from its own start with no
context carried over, every token after the first predicted. The HF model runs in float32
(its stored dtype) on transformers; the GGUFs on llama.cpp through llama-cpp-python with
the threads `tllm ask` would pick (engine/llamacpp/engine.py `auto_threads`). Tokens/s:
greedy decoding of 64 new tokens after the same chat prompt, after one warm-up answer,
median of three.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

# Held-out text: written here, so no training set of the model can have held it verbatim.
PARAGRAPHS = [
    "The lighthouse keeper climbed the narrow stairs every evening at dusk. He wound the clock "
    "that turned the lens, trimmed the wick, and wrote the state of the sea in a worn leather "
    "book. On calm nights the beam swept across the water in long, patient circles; in storms "
    "he stayed awake until dawn, listening to the waves break against the rocks below.",
    "To make a simple loaf of bread, mix flour, water, salt and a little yeast in a large bowl. "
    "Knead the dough for about ten minutes, until it feels smooth and springs back when you "
    "press it. Leave it covered in a warm place for an hour, shape it, let it rise again, and "
    "bake it in a hot oven until the crust is golden and sounds hollow when tapped.",
    "Rivers shape the land around them over thousands of years. Fast water near the source "
    "cuts deep valleys into the hills, while slower water further downstream drops the sand "
    "and mud it carries, building wide plains and deltas. Many of the world's oldest cities "
    "grew up beside rivers, which gave them water, food, and a road for trade.",
    "The small museum in the old town is open every day except Monday. Its first room holds "
    "maps of the harbour drawn by sailors three centuries ago; the second shows tools used by "
    "the weavers who once worked in the nearby mills. Visitors often spend the most time in "
    "the garden, where a fountain is surrounded by roses and lemon trees.",
    "When you learn a new language, short daily practice works better than long sessions once "
    "a week. Read a few sentences aloud, write down the words you do not know, and try to use "
    "them the same day. Listening to songs and simple stories helps your ear get used to the "
    "rhythm of the language long before you understand every word.",
    "Bees visit thousands of flowers to gather enough nectar for a single spoonful of honey. "
    "Inside the hive, worker bees fan their wings to dry the nectar, then seal it in wax cells "
    "for the winter. A healthy colony can hold tens of thousands of bees, all of them the "
    "daughters of one queen who may live for several years.",
    "The train left the station a few minutes late and followed the coast towards the north. "
    "Through the window the passengers watched fishing boats, empty beaches, and small villages "
    "with white houses and blue doors. By noon the line turned inland, climbing slowly through "
    "forests of pine until the first snow appeared on the mountains ahead.",
    "A good way to keep a garden healthy is to water it early in the morning, when the air is "
    "cool and less water is lost to the sun. Mulch around the plants keeps the soil moist and "
    "stops weeds from growing. Rotating vegetables between beds each year prevents the soil "
    "from losing the nutrients that one kind of plant uses most.",
    "The village council met on Thursday evening to discuss the new bridge. Some members "
    "wanted a wide stone bridge that could carry trucks, while others preferred a narrow "
    "wooden one for walkers and bicycles only. After two hours of talk they agreed to ask an "
    "engineer for the cost of both and to vote again next month.",
    "Owls hunt mostly at night. Their large eyes gather what little light there is, and their "
    "soft feathers let them fly almost without a sound. Many owls can find a mouse under the "
    "snow by hearing alone, turning their heads until the rustle reaches both ears at the same "
    "moment, and then dropping silently onto their prey.",
    "Before a long walk in the hills, check the weather forecast and tell someone where you are "
    "going. Carry water, a warm layer, a map, and something to eat, even if the morning looks "
    "bright. Paths that are easy in dry weather can become slippery after rain, and clouds can "
    "hide the way back surprisingly quickly.",
    "The orchestra tuned their instruments while the audience found their seats. When the "
    "conductor raised her hands the hall fell silent, and the first notes of the violins rose "
    "softly, like wind over a field. By the end of the evening the whole room stood to applaud, "
    "and the musicians bowed three times before leaving the stage.",
    "Recycling paper saves trees, water and energy. Old newspapers and boxes are soaked and "
    "beaten into a pulp, cleaned of ink and glue, and then pressed and dried into new sheets. "
    "Each time paper is recycled its fibres become a little shorter, so after several rounds "
    "it is usually turned into egg cartons or tissue instead.",
    "My grandmother kept a notebook of recipes that she had collected over fifty years. Some "
    "pages were stained with butter and flour, others had notes in the margins about which "
    "friend had given her the recipe and when. Every winter she baked the same spiced biscuits, "
    "and the smell of cinnamon filled the whole house for days.",
]
PROMPT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write a short paragraph about the sea."},
]
TARGETS = {"q8_0": 1.01, "q4_k_m": 1.10}


def windows(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size) if len(ids[i : i + size]) > 1]


def nll_of(logits, ids) -> tuple[float, int]:
    """Summed negative log-likelihood of ids[1:] under logits[:-1] (numpy arrays)."""
    import numpy as np

    logits = logits[:-1].astype(np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    picked = logits[np.arange(len(ids) - 1), ids[1:]]
    return float((log_norm - picked).sum()), len(ids) - 1


def hf_scores(model_dir: Path, chunks) -> tuple[float, float]:
    """(perplexity, generation tokens/s) of the HF model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for ids in chunks:
            logits = model(torch.tensor([ids])).logits[0].numpy()
            nll, n = nll_of(logits, ids)
            total, count = total + nll, count + n
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompt = tokenizer.apply_chat_template(
        PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )

    def answer():
        with torch.no_grad():
            out = model.generate(**prompt, max_new_tokens=64, min_new_tokens=64, do_sample=False)
        return out.shape[1] - prompt["input_ids"].shape[1]

    return math.exp(total / count), _rate(answer)


def gguf_scores(path: Path, chunks, window: int, prompt_ids: list[int]) -> tuple[float, float]:
    """(perplexity, generation tokens/s) of a GGUF file on llama.cpp."""
    import numpy as np
    from llama_cpp import Llama

    from together_llm.engine.llamacpp.engine import auto_threads

    threads, batch_threads = auto_threads()  # as `tllm ask` picks them
    llm = Llama(
        model_path=str(path),
        n_ctx=max(window, 512),
        n_batch=max(window, 512),
        logits_all=True,
        n_threads=threads,
        n_threads_batch=batch_threads,
        verbose=False,
    )
    total, count = 0.0, 0
    for ids in chunks:
        llm.reset()
        llm.eval(ids)
        nll, n = nll_of(np.array(llm.scores[: len(ids)]), ids)
        total, count = total + nll, count + n

    def answer():
        llm.reset()
        made = 0
        for _ in llm.generate(prompt_ids, temp=0.0, top_k=1):
            made += 1  # end-of-turn is ignored: every run decodes the same 64 tokens
            if made >= 64:
                break
        return made

    rate = _rate(answer)
    llm.close()
    return math.exp(total / count), rate


def _rate(answer) -> float:
    answer()  # warm-up
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        made = answer()
        rates.append(made / (time.perf_counter() - start))
    return statistics.median(rates)


def run_tllm(home: Path, *args: str) -> None:
    env = {**os.environ, "TLLM_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "together_llm.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        sys.exit(f"tllm {' '.join(args)} failed:\n{done.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="home to export from (default: a throwaway one)")
    parser.add_argument("--adapter", help="merge this adapter of the home into the export")
    parser.add_argument("--window", type=int, default=256, help="tokens per scored window")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    from together_llm.export.exporter import export
    from together_llm.home import Home

    with tempfile.TemporaryDirectory(prefix="tllm-p5-") as tmp:
        home_dir = args.home or Path(tmp) / "home"
        if args.home is None:
            run_tllm(home_dir, "models", "convert", "default")
        home = Home.open(home_dir)
        name = f"p5-{os.getpid()}"
        start = time.perf_counter()
        result = export(
            home,
            name,
            adapter=args.adapter,
            gguf=["f16", "q8_0", "q4_k_m"],
            report=lambda message: print(message, file=sys.stderr),
        )
        export_s = time.perf_counter() - start
        try:
            figures = measure(result.folder, name, args.window)
        finally:
            if args.home is not None:
                import shutil

                shutil.rmtree(result.folder, ignore_errors=True)
    figures.update(
        export_seconds=round(export_s, 1),
        adapter=args.adapter,
        window=args.window,
        load_average=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    )
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"held-out text: {figures['tokens']} tokens in windows of {args.window}; "
        f"export took {figures['export_seconds']} s"
    )
    print(f"{'model':<8} {'perplexity':>10} {'ratio':>7} {'target':>7} {'size MB':>8} {'tok/s':>7}")
    for kind, row in figures["models"].items():
        target = f"<={TARGETS[kind]}" if kind in TARGETS else ""
        ok = (
            "" if kind not in TARGETS else ("  ok" if row["ratio"] <= TARGETS[kind] else "  MISSED")
        )
        print(
            f"{kind:<8} {row['perplexity']:>10.4f} {row['ratio']:>7.4f} {target:>7} "
            f"{row['megabytes']:>8.1f} {row['tokens_per_s']:>7.1f}{ok}"
        )


def measure(folder: Path, name: str, window: int) -> dict:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder / "hf")
    ids = tokenizer("\n\n".join(PARAGRAPHS), add_special_tokens=False)["input_ids"]
    chunks = windows(ids, window)
    prompt_ids = tokenizer.apply_chat_template(
        PROMPT, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    hf_ppl, hf_rate = hf_scores(folder / "hf", chunks)
    hf_bytes = sum(p.stat().st_size for p in (folder / "hf").glob("*.safetensors"))
    models = {
        "hf": {
            "perplexity": hf_ppl,
            "ratio": 1.0,
            "megabytes": hf_bytes / 1e6,
            "tokens_per_s": hf_rate,
        }
    }
    for kind in ("f16", "q8_0", "q4_k_m"):
        path = folder / f"{name}-{kind}.gguf"
        ppl, rate = gguf_scores(path, chunks, window, prompt_ids)
        models[kind] = {
            "perplexity": ppl,
            "ratio": ppl / hf_ppl,
            "megabytes": path.stat().st_size / 1e6,
            "tokens_per_s": rate,
        }
    return {
        "tokens": len(ids),
        "models": models,
        "met": all(models[k]["ratio"] <= t for k, t in TARGETS.items()),
    }


if __name__ == "__main__":
    main()
