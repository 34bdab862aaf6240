"""Deduplication on its own: which earlier row a duplicate repeats, and what counts as one."""

from __future__ import annotations

import random

from together_llm.data.dedup import Deduplicator


def _words(rng: random.Random, n: int) -> list[str]:
    return [
        "".join(rng.choice("abcdefghiklmnoprstuvy") for _ in range(rng.randint(3, 8)))
        for _ in range(n)
    ]


def test_exact_duplicates_ignore_spacing_and_name_the_first_line():
    dedup = Deduplicator(near=False, threshold=0.8, num_perm=128)
    assert dedup.check(1, "Hello there, world.", None) is None
    assert dedup.check(2, "Something else.", None) is None
    assert dedup.check(3, "Hello   there,\nworld.", None) == ("duplicate", "same as line 1")
    assert dedup.check(4, "hello there, world.", None) is None  # case is content: not exact


def test_near_duplicates_are_found_at_the_threshold_and_not_below():
    rng = random.Random(5)
    base = _words(rng, 40)
    one_edit = base[:10] + ["changed"] + base[11:]
    unrelated = _words(rng, 40)
    dedup = Deduplicator(near=True, threshold=0.8, num_perm=128)
    assert dedup.check(1, " ".join(base), None) is None
    assert dedup.check(2, " ".join(unrelated), None) is None
    rule, detail = dedup.check(3, " ".join(one_edit), None)
    assert rule == "near duplicate" and detail.startswith("like line 1, similarity ")
    assert 0.8 <= float(detail.rsplit(" ", 1)[1]) < 1
    strict = Deduplicator(near=True, threshold=0.99, num_perm=128)
    assert strict.check(1, " ".join(base), None) is None
    assert strict.check(2, " ".join(one_edit), None) is None


def test_a_threshold_near_one_still_builds_an_index():
    dedup = Deduplicator(near=True, threshold=1.0, num_perm=128)
    assert dedup.check(1, "The same words in the same order.", None) is None
    assert dedup.check(2, "the same words in the same order.", None)[0] == "near duplicate"


def test_labels_separate_otherwise_equal_rows():
    dedup = Deduplicator(near=True, threshold=0.8, num_perm=64)
    assert dedup.check(1, "It was fine.", "positive") is None
    assert dedup.check(2, "It was fine.", "negative") is None
    assert dedup.check(3, "It was fine.", "negative") == ("duplicate", "same as line 2")
