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

    `spec` is either a fraction strictly between 0 and 1 (0.1: a tenth, rounded half up, at
    least one row) or a whole row count of 1 or more (50), written without a decimal point.
    Anything else is refused with what to write instead; in particular "1.0" (a whole
    dataset? one row?) and "50.0" are refused rather than guessed."""
    spec = _parse_eval(spec)
    if rows < 2:
        raise TllmError(
            f"a dataset needs at least 2 rows to split into train and eval, this one has {rows}"
        )
    if isinstance(spec, int):
        if not 1 <= spec < rows:
            raise TllmError(
                f"--eval {spec}: a row count must be from 1 to {rows - 1} here "
                f"({rows} rows, and training needs at least one)"
            )
        return spec, round(spec / rows, 6)
    count = math.floor(rows * spec + 0.5)
    return min(max(count, 1), rows - 1), spec


def _parse_eval(spec: float | int | str) -> float | int:
    """A fraction in (0, 1) as a float, or a row count as an int."""
    if isinstance(spec, bool):
        raise TllmError(f"--eval must be a fraction like 0.1 or a row count like 50, not {spec}")
    if isinstance(spec, str):
        text = spec.strip()
        if text.lstrip("+-").isdigit():
            return int(text)
        try:
            spec = float(text)
        except ValueError:
            raise TllmError(
                f"--eval must be a fraction like 0.1 or a row count like 50, not {text!r}"
            ) from None
    if isinstance(spec, int):
        return spec
    if 0 < spec < 1:
        return float(spec)
    if math.isfinite(spec) and spec >= 1 and spec == int(spec):
        n = int(spec)
        raise TllmError(
            f"--eval {spec:.1f} is neither a fraction nor a row count: use {n} for "
            f"{'one row' if n == 1 else f'{n} rows'} or a fraction below 1 (0.1 for a tenth)"
        )
    raise TllmError(
        f"--eval fraction must be between 0 and 1 (exclusive), not {spec:g}; "
        "or give a whole row count like 50"
    )


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
                        line = data[starts[i] : ends[i]]
                        out.write(line if line.endswith(b"\n") else line + b"\n")
        for split in targets:
            os.replace(temporary[split], targets[split])
    finally:
        for path in temporary.values():
            path.unlink(missing_ok=True)

    dataset.card["split"] = {
        "train": rows - n_eval,
        "eval": n_eval,
        "seed": seed,
        "eval_fraction": fraction,
    }
    dataset.save_card()
    return dataset.card["split"]
