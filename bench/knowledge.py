"""Knowledge retrieval at 10,000 documents: our SQLite FTS5 index (`tllm knowledge add`,
`search`) against `rank_bm25.BM25Okapi` (pure Python and numpy) on the same corpus.

    .venv/bin/python bench/knowledge.py                      # 10,000 documents, 300 questions
    .venv/bin/python bench/knowledge.py --docs 2000 --queries 100 --seed 3 --json

The corpus is generated (seeded): each document describes one workshop with a made-up name
found in no other document (two syllable words, unique), a few facts about it, and filler
sentences drawn from a shared vocabulary of 1,500 words with a Zipf-like skew, so common
words are in thousands of documents as in real text. Each question asks for one fact of one
document in other words ("Which animals does the Varokel workshop look after?"), so exactly
one document answers it; recall@5 is the share of questions whose document is among the
first five results (for ours: among the documents of the first five chunks).

  ingest  ours: `ingest()` of the folder of .md files into a fresh index (read, hash, parse,
          chunk, insert with FTS5 triggers, one transaction a file), as `tllm knowledge add`;
          peer: read the same files, tokenize (lower-cased words, our stop words removed),
          build `BM25Okapi`. MB/s over the files' bytes, chunks/s (the peer's chunk is a file).
  query   each question timed alone, the index open once (as `tllm serve` and `chat` keep it):
          ours `search(index, q, 5)` (BM25 over FTS5, hits with text and metadata); peer
          `get_top_n(tokens, documents, 5)`. p50 and p95 over all questions, one warm-up
          question each first. Targets: recall ours >= peer, p95 ours <= 0.2x the peer's.

Needs `rank_bm25==0.2.2`, which scripts/setup installs (the `bench` extra, in requirements.lock).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from together_llm.home import Home
from together_llm.knowledge.index import STOPWORDS, KnowledgeIndex
from together_llm.knowledge.ingest import ingest
from together_llm.knowledge.search import search

SYLLABLES = (
    "ka ro ve li mo tu sa ne ri po la de vi nu ga be to mi fe zo ha ku se da lo pi re wu ya ti ma"
).split()
ANIMALS = "goats bees hens ducks geese sheep rabbits donkeys pigeons alpacas".split()
CRAFTS = "pottery weaving carpentry glassblowing bookbinding basketry printing smithing".split()
TOWNS = "Orrin Bramwick Calderra Velmora Halvern Quarryside Ferrow Dunmere Ashgrove Tilbury".split()
# (question wording, fact sentence) pairs: the question avoids the sentence's verb where it can.
FACTS = [
    (
        "Which animals does the {name} workshop look after?",
        "The {name} workshop keeps {animal} behind the yard.",
    ),
    ("What craft is taught at {name}?", "At {name} the masters teach {craft} to apprentices."),
    (
        "In which town is the {name} workshop?",
        "The {name} workshop stands in {town}, near the old bridge.",
    ),
    ("How many members belong to {name}?", "{name} counts {members} members this year."),
]


def vocabulary(rng: random.Random, size: int = 1500) -> list[str]:
    words = set()
    while len(words) < size:
        word = "".join(rng.choices(SYLLABLES, k=rng.randint(2, 3)))
        if word not in STOPWORDS:
            words.add(word)
    return sorted(words)


def make_corpus(count: int, seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, int]]]:
    """[(file name, text)] and [(question, index of the one document that answers it)]."""
    rng = random.Random(seed)
    common = vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(common))]  # Zipf-like
    names: set[str] = set(common)
    documents, questions = [], []
    for i in range(count):
        while True:  # a name no other document (and no filler word) uses
            name = "".join(rng.choices(SYLLABLES, k=4)).capitalize()
            if name.lower() not in names:
                names.add(name.lower())
                break
        values = {
            "name": name,
            "animal": rng.choice(ANIMALS),
            "craft": rng.choice(CRAFTS),
            "town": rng.choice(TOWNS),
            "members": rng.randint(12, 900),
        }
        filler = [
            " ".join(rng.choices(common, weights, k=rng.randint(8, 16))).capitalize() + "."
            for _ in range(rng.randint(6, 14))
        ]
        facts = [sentence.format(**values) for _, sentence in FACTS]
        sentences = filler + facts
        rng.shuffle(sentences)
        body = "\n\n".join(" ".join(sentences[j : j + 3]) for j in range(0, len(sentences), 3))
        documents.append((f"{i:05d}-{name.lower()}.md", f"# The {name} workshop\n\n{body}\n"))
        question, _ = rng.choice(FACTS)
        questions.append((question.format(**values), i))
    return documents, questions


def tokens(text: str) -> list[str]:
    """The peer's tokenizer: our query words (lower-cased, stop words out)."""
    return [w for w in re.findall(r"\w+", text.lower()) if w not in STOPWORDS]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def run_ours(folder: Path, total_bytes: int, questions, names: list[str], root: Path) -> dict:
    home = Home.open(root / "home")
    with KnowledgeIndex.open(home) as index:
        start = time.perf_counter()
        report = ingest(index, [folder])
        ingest_s = time.perf_counter() - start
        assert not report.problems, report.problems[:3]
        chunks = index.chunk_count()
        search(index, "warm up the workshop", 5)
        latencies, found = [], 0
        for question, answer in questions:
            start = time.perf_counter()
            hits = search(index, question, 5)
            latencies.append(time.perf_counter() - start)
            found += names[answer] in {Path(h.source).name for h in hits}
    return {
        "ingest_s": ingest_s,
        "mb_per_s": total_bytes / 1e6 / ingest_s,
        "chunks": chunks,
        "chunks_per_s": chunks / ingest_s,
        **summary(latencies, found, len(questions)),
    }


def run_peer(folder: Path, total_bytes: int, questions, names: list[str]) -> dict:
    from rank_bm25 import BM25Okapi

    start = time.perf_counter()
    files = sorted(folder.iterdir())
    texts = [path.read_text(encoding="utf-8") for path in files]
    bm25 = BM25Okapi([tokens(text) for text in texts])
    ingest_s = time.perf_counter() - start
    position = list(range(len(files)))
    bm25.get_top_n(tokens("warm up the workshop"), position, 5)
    latencies, found = [], 0
    for question, answer in questions:
        start = time.perf_counter()
        top = bm25.get_top_n(tokens(question), position, 5)
        latencies.append(time.perf_counter() - start)
        found += names[answer] in {files[i].name for i in top}
    return {
        "ingest_s": ingest_s,
        "mb_per_s": total_bytes / 1e6 / ingest_s,
        "chunks": len(files),
        "chunks_per_s": len(files) / ingest_s,
        **summary(latencies, found, len(questions)),
    }


def summary(latencies: list[float], found: int, asked: int) -> dict:
    return {
        "p50_ms": percentile(latencies, 0.5) * 1e3,
        "p95_ms": percentile(latencies, 0.95) * 1e3,
        "recall_at_5": found / asked,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000, help="documents to generate")
    parser.add_argument("--queries", type=int, default=300, help="questions to time")
    parser.add_argument("--seed", type=int, default=0, help="corpus and question seed")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    documents, questions = make_corpus(args.docs, args.seed)
    questions = random.Random(args.seed + 1).sample(questions, min(args.queries, len(questions)))
    names = [name for name, _ in documents]
    with tempfile.TemporaryDirectory(prefix="tllm-bench-knowledge-") as tmp:
        root = Path(tmp)
        folder = root / "corpus"
        folder.mkdir()
        for name, text in documents:
            (folder / name).write_text(text, encoding="utf-8")
        total_bytes = sum(len(text.encode()) for _, text in documents)
        load = os.getloadavg()[0]
        peer = run_peer(folder, total_bytes, questions, names)
        ours = run_ours(folder, total_bytes, questions, names, root)
    figures = {
        "docs": args.docs,
        "queries": len(questions),
        "corpus_mb": total_bytes / 1e6,
        "load_before": load,
        "load_after": os.getloadavg()[0],
        "ours": ours,
        "peer": peer,
        "p95_ratio": ours["p95_ms"] / peer["p95_ms"],
        "p50_ratio": ours["p50_ms"] / peer["p50_ms"],
        "ingest_ratio": ours["mb_per_s"] / peer["mb_per_s"],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"{args.docs} documents, {total_bytes / 1e6:.1f} MB, {len(questions)} questions; "
        f"load {load:.1f} -> {figures['load_after']:.1f}"
    )
    print(f"{'':<22} {'ours (FTS5)':>14} {'rank_bm25':>14} {'ratio':>8}")
    rows = [
        ("ingest MB/s", "mb_per_s", "{:.2f}"),
        ("ingest chunks/s", "chunks_per_s", "{:.0f}"),
        ("query p50 ms", "p50_ms", "{:.2f}"),
        ("query p95 ms", "p95_ms", "{:.2f}"),
        ("recall@5", "recall_at_5", "{:.3f}"),
    ]
    for label, key, form in rows:
        ratio = ours[key] / peer[key] if peer[key] else float("nan")
        print(
            f"{label:<22} {form.format(ours[key]):>14} {form.format(peer[key]):>14} {ratio:>7.3f}x"
        )
    met = ours["recall_at_5"] >= peer["recall_at_5"] and figures["p95_ratio"] <= 0.2
    print(f"targets (recall ours >= peer, p95 <= 0.2x): {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
