"""Exact and near-duplicate detection for `tllm data clean`, against the rows kept so far.

Exact: a hash of the text with its whitespace collapsed. Near: a MinHash signature of the
text's character 5-grams, looked up in an LSH index, each candidate confirmed by its
estimated Jaccard similarity (LSH alone also returns some less similar rows). A row with a
label (classification, feedback) only duplicates a row with the same label: the same text
with two labels is a conflict for the user to see, not a copy.

Memory: a 16-byte hash per kept row, and for near duplicates its MinHash signature (512
bytes at the default 128 permutations) plus its place in the LSH index.
"""

from __future__ import annotations

import hashlib
import zlib

# Near-duplicates are compared on character 5-grams of the casefolded text rather than word
# n-grams: characters work for every script (BELLE's Chinese has no spaces to split words
# on), and on short rows an edited word changes only the few 5-grams around it, while with
# word 3-grams one edit in a ten-word instruction changes a third of the shingles.
SHINGLE = 5


class Deduplicator:
    """`check(line, text, label)` for each row in order: None (and the row is remembered)
    for a new one, else (rule, detail) naming the earlier line it repeats."""

    def __init__(self, near: bool, threshold: float, num_perm: int):
        self.seen: dict[bytes, int] = {}
        self.near = near
        if near:
            from datasketch import MinHash, MinHashLSH

            self.threshold, self.num_perm = threshold, num_perm
            # crc32 instead of datasketch's default sha1: four times faster, deterministic
            # across runs (unlike hash()), and 32 bits is plenty for the shingles of a row.
            self._proto = MinHash(num_perm=num_perm, hashfunc=zlib.crc32)
            self.lsh = _index(MinHashLSH, threshold, num_perm)
            self.signatures: dict[int, tuple] = {}  # line -> (hash values, label)

    def _signature(self, text: str):
        from datasketch import MinHash

        flat = " ".join(text.casefold().split())
        shingles = {flat[i : i + SHINGLE].encode() for i in range(max(1, len(flat) - SHINGLE + 1))}
        sig = MinHash(
            num_perm=self.num_perm,
            hashfunc=zlib.crc32,
            scheme=self._proto.scheme,
            permutations=self._proto.permutations,
        )
        sig.update_batch(shingles)
        return sig

    def check(self, line: int, text: str, label) -> tuple[str, str] | None:
        key = hashlib.blake2b(
            f"{label!r}\0{' '.join(text.split())}".encode(), digest_size=16
        ).digest()
        if key in self.seen:
            return "duplicate", f"same as line {self.seen[key]}"
        if self.near:
            import numpy as np

            sig = self._signature(text)
            best, best_line = -1.0, None
            for other in sorted(self.lsh.query(sig)):  # sorted: ties name the earliest line
                values, other_label = self.signatures[other]
                if other_label == label:
                    similarity = float(np.count_nonzero(values == sig.hashvalues)) / self.num_perm
                    if similarity > best:
                        best, best_line = similarity, other
            if best_line is not None and best >= self.threshold:
                return "near duplicate", f"like line {best_line}, similarity {best:.2f}"
            self.lsh.insert(line, sig, check_duplication=False)
            self.signatures[line] = (sig.hashvalues.copy(), label)
        self.seen[key] = line
        return None


def _index(MinHashLSH, threshold: float, num_perm: int):
    """An LSH index for finding candidates at `threshold`.

    Every candidate is checked against the real threshold, so a missed pair costs more than
    an extra candidate: the bands are tuned to miss few (with datasketch's default even
    weights, a pair 0.05 above a 0.8 threshold is missed about a third of the time; with
    these, under 1%). Near 1 the tuning wants a single band, which datasketch refuses; an
    index tuned a little lower only returns more candidates."""
    lowered = threshold
    while True:
        try:
            return MinHashLSH(threshold=lowered, num_perm=num_perm, weights=(0.05, 0.95))
        except ValueError:
            if lowered <= 0.5:
                raise
            lowered -= 0.02
