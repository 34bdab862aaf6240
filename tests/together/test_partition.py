"""Dividing a dataset among peers: iid mixes, Dirichlet skews, nobody is left without rows."""

from collections import Counter

import pytest

from together_llm.errors import TllmError
from together_llm.together.partition import hold_out, partition

ROWS = [{"text": f"row {i}", "label": label} for i, label in enumerate("abcd" * 25)]


def test_iid_divides_every_row_once_in_equal_shares():
    parts = partition(ROWS, 4, "iid", seed=1)
    assert sorted(r["text"] for p in parts for r in p) == sorted(r["text"] for r in ROWS)
    assert {len(p) for p in parts} == {25}
    assert all(len(Counter(r["label"] for r in p)) >= 3 for p in parts)  # every peer sees a mix


def test_dirichlet_by_label_skews_what_each_peer_holds():
    def dominance(parts):  # the share of each peer's most common label, averaged
        return sum(
            Counter(r["label"] for r in p).most_common(1)[0][1] / len(p) for p in parts
        ) / len(parts)

    skewed = partition(ROWS, 4, "dirichlet", alpha=0.1, by="label", seed=1)
    assert sum(len(p) for p in skewed) == len(ROWS) and all(len(p) >= 2 for p in skewed)
    assert dominance(skewed) > 0.7 > dominance(partition(ROWS, 4, "iid", seed=1))


def test_dirichlet_without_a_field_skews_sizes_and_everyone_gets_two_rows():
    parts = partition(ROWS, 5, "dirichlet", alpha=0.2, seed=3)
    sizes = sorted(len(p) for p in parts)
    assert sum(sizes) == len(ROWS) and sizes[0] >= 2 and sizes[-1] > 2 * sizes[1]


def test_refusals_name_the_problem():
    with pytest.raises(TllmError, match="no field 'topic'"):
        partition(ROWS, 2, "dirichlet", by="topic")
    with pytest.raises(TllmError, match="cannot give 60 peers"):
        partition(ROWS, 60)
    rest, held = hold_out(ROWS, 0.1, seed=0)
    assert (
        len(held) == 10
        and len(rest) == 90
        and not {r["text"] for r in held} & {r["text"] for r in rest}
    )
