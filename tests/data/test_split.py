"""`tllm data split`: exact counts, reproducible, every row in exactly one split."""

from __future__ import annotations

import pytest

from tests.conftest import run_tllm
from together_llm.data.split import split_dataset
from together_llm.data.store import DatasetWriter, open_dataset
from together_llm.errors import TllmError


def make(home, rows: int, name: str = "src"):
    with DatasetWriter(home, name, "text", source="test", format="test", overwrite=True) as out:
        for i in range(rows):
            out.add({"text": f"row {i}"})
        out.commit()
    return open_dataset(home, name)


def read(home, split, name="src"):
    return [row["text"] for row in open_dataset(home, name).rows(split)]


def test_fraction_counts_and_card(home):
    make(home, 10)
    assert split_dataset(home, "src", 0.25, seed=4) == {
        "train": 7,
        "eval": 3,
        "seed": 4,
        "eval_fraction": 0.25,
    }  # 2.5 rounds up
    assert open_dataset(home, "src").card["split"]["eval"] == 3
    assert len(read(home, "train")) == 7 and len(read(home, "eval")) == 3


def test_count_and_minimum_of_one(home):
    make(home, 40)
    assert split_dataset(home, "src", "5")["eval"] == 5
    assert split_dataset(home, "src", 0.001)["eval"] == 1  # rounds to 0, but eval needs a row


def test_every_row_in_exactly_one_split_and_shuffled(home):
    make(home, 50)
    split_dataset(home, "src", 0.2, seed=0)
    train, evaluation = read(home, "train"), read(home, "eval")
    assert sorted(train + evaluation) == sorted(f"row {i}" for i in range(50))
    assert len(set(train + evaluation)) == 50
    original_order = [t for t in (f"row {i}" for i in range(50)) if t in set(train)]
    assert train != original_order


def test_same_seed_same_split_other_seed_other_split(home):
    make(home, 30)
    split_dataset(home, "src", 0.3, seed=1)
    first = read(home, "train"), read(home, "eval")
    split_dataset(home, "src", 0.3, seed=2)
    other = read(home, "train"), read(home, "eval")
    split_dataset(home, "src", 0.3, seed=1)
    assert (read(home, "train"), read(home, "eval")) == first
    assert set(other[1]) != set(first[1])


def test_resplitting_replaces_the_split(home):
    make(home, 20)
    split_dataset(home, "src", 0.5)
    split_dataset(home, "src", 0.1, seed=9)
    assert len(read(home, "eval")) == 2 and len(read(home, "train")) == 18
    assert open_dataset(home, "src").card["split"] == {
        "train": 18,
        "eval": 2,
        "seed": 9,
        "eval_fraction": 0.1,
    }
    assert not list((home.path / "datasets" / "src").glob("*.tmp"))


@pytest.mark.parametrize(
    "rows,spec,message",
    [
        (1, 0.1, "at least 2 rows"),
        (10, "0", "from 1 to 9"),
        (10, "0.0", "between 0 and 1"),
        (10, "1.5", "between 0 and 1"),
        (10, "10", "from 1 to 9"),
        (10, "a tenth", "fraction like 0.1"),
        (10, "1.0", r"use 1 for one row or a fraction below 1"),
        (10, 1.0, r"use 1 for one row or a fraction below 1"),
        (10, "5.0", r"use 5 for 5 rows"),
    ],
)
def test_refusals(home, rows, spec, message):
    make(home, rows)
    with pytest.raises(TllmError, match=message):
        split_dataset(home, "src", spec)
    assert not open_dataset(home, "src").has_splits


def test_unsplit_dataset_says_how_to_split(home):
    make(home, 5)
    with pytest.raises(TllmError, match="tllm data split src"):
        read(home, "train")


def test_cli_split(home):
    make(home, 20)
    result = run_tllm("data", "split", "src", "--eval", "0.25", "--seed", "3", home=home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "src: 15 train rows, 5 eval rows (seed 3)"
    result = run_tllm("data", "split", "src", "--eval", "20", home=home)
    assert result.returncode == 1 and "from 1 to 19" in result.stderr


def test_eval_one_is_one_row_and_one_point_zero_says_what_to_write(home):
    make(home, 10)
    assert split_dataset(home, "src", "1")["eval"] == 1
    assert len(read(home, "eval")) == 1 and len(read(home, "train")) == 9
    result = run_tllm("data", "split", "src", "--eval", "1.0", home=home)
    assert result.returncode == 1
    assert (
        "use 1 for one row or a fraction below 1" in result.stderr
        and "Traceback" not in result.stderr
    )
