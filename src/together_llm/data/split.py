"""`tllm data split`: train.jsonl and eval.jsonl beside a dataset's data.jsonl.

Each row lands in exactly one split, both shuffled, and the same seed always gives the same
split. Rows are not held in memory: one pass notes where each line starts and ends, a seeded
permutation of the line numbers decides the order, and the rows are copied from the
memory-mapped file in that order. The card records the counts and the seed; splitting again
replaces the previous split.
"""

from __future__ import annotations

import math
import mmap
import os
from array import array

from ..errors import TllmError
from .store import open_dataset


def eval_count(rows: int, spec: float | int | str) -> tuple[int, float]:
    """How many of `rows` rows go to eval, and the fraction that is.

    `spec` is a fraction (0.1: a tenth, rounded half up, at least one row) or a whole count
    (50). A string is read as a count when it is a plain integer ("50"), else a fraction."""
    if isinstance(spec, str):
        text = spec.strip()
        try:
            spec = int(text) if text.isdigit() else float(text)
        except ValueError:
            raise TllmError(f"--eval must be a fraction like 0.1 or a row count like 50, not {text!r}") from None
    if rows < 2:
        raise TllmError(f"a dataset needs at least 2 rows to split into train and eval, this one has {rows}")
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not 1 <= spec < rows:
            raise TllmError(f"--eval {spec}: a row count must be from 1 to {rows - 1} here "
                            f"({rows} rows, and training needs at least one)")
        return spec, round(spec / rows, 6)
    fraction = float(spec)
    if not 0 < fraction < 1:
        raise TllmError(f"--eval fraction must be between 0 and 1 (exclusive), not {fraction:g}")
    count = math.floor(rows * fraction + 0.5)
    return min(max(count, 1), rows - 1), fraction


def _line_spans(path) -> tuple[array, array]:
    """Start and end offsets of every non-blank line (8 bytes each per row)."""
    starts, ends = array("q"), array("q")
    offset = 0
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                starts.append(offset)
                ends.append(offset + len(line))
            offset += len(line)
    return starts, ends


def split_dataset(home, name: str, eval_spec: float | int | str = 0.1, seed: int = 0) -> dict:
    """Write datasets/<name>/train.jsonl and eval.jsonl; returns the card's "split" entry."""
    import numpy as np

    dataset = open_dataset(home, name)
    source = dataset.path()
    starts, ends = _line_spans(source)
    rows = len(starts)
    n_eval, fraction = eval_count(rows, eval_spec)
    order = np.random.default_rng(seed).permutation(rows)

    targets = {split: dataset.folder / f"{split}.jsonl" for split in ("eval", "train")}
    temporary = {split: path.with_suffix(".jsonl.tmp") for split, path in targets.items()}
    try:
        with open(source, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            for split, indices in (("eval", order[:n_eval]), ("train", order[n_eval:])):
                with open(temporary[split], "wb", buffering=1 << 20) as out:
                    for i in indices:
                        line = data[starts[i]:ends[i]]
                        out.write(line if line.endswith(b"\n") else line + b"\n")
        for split in targets:
            os.replace(temporary[split], targets[split])
    finally:
        for path in temporary.values():
            path.unlink(missing_ok=True)

    dataset.card["split"] = {"train": rows - n_eval, "eval": n_eval, "seed": seed,
                             "eval_fraction": fraction}
    dataset.save_card()
    return dataset.card["split"]
