"""Dividing one dataset's rows among simulated peers.

- iid: shuffled and dealt out in turn, so every peer holds the same mix.
- dirichlet with a field (`by`, e.g. a classification row's "label" or a "topic" key):
  each value's rows are split among the peers in proportions drawn from Dirichlet(alpha), so
  a small alpha gives each peer mostly a few values (label skew, as in the FL literature).
- dirichlet without a field: the peers' shares of the rows are drawn from Dirichlet(alpha)
  (quantity skew: a few large peers, many small ones).
Every peer gets at least MIN_ROWS rows (one to train on, one held out): rows move from the
largest peers to any smaller one. All draws follow `seed`.
"""

from __future__ import annotations

import random

from ..errors import TllmError

MIN_ROWS = 2


def hold_out(rows: list, fraction: float, seed: int) -> tuple[list, list]:
    """(rest, held out): a seeded `fraction` of the rows set aside (at least one row)."""

    if not 0 < fraction < 1:
        raise TllmError(f"--global-eval must be a fraction between 0 and 1, not {fraction}")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    count = max(1, round(len(rows) * fraction))
    held = set(order[:count])
    return (
        [r for i, r in enumerate(rows) if i not in held],
        [r for i, r in enumerate(rows) if i in held],
    )


def partition(
    rows: list,
    peers: int,
    how: str = "iid",
    alpha: float = 0.5,
    by: str | None = None,
    seed: int = 0,
) -> list[list]:
    """`rows` divided among `peers` peers (see the module's docstring)."""
    import numpy as np

    if peers < 1:
        raise TllmError("--peers must be at least 1")
    if len(rows) < MIN_ROWS * peers:
        raise TllmError(
            f"{len(rows)} rows cannot give {peers} peers {MIN_ROWS} rows each "
            "(one to train, one held out); use fewer peers or more data"
        )
    rng = np.random.default_rng(seed)
    if how == "iid":
        order = rng.permutation(len(rows))
        parts = [[rows[i] for i in order[p::peers]] for p in range(peers)]
    elif how == "dirichlet":
        if not alpha > 0:
            raise TllmError(f"--alpha must be greater than 0, not {alpha}")
        parts = (
            _by_field(rows, peers, alpha, by, rng) if by else _by_quantity(rows, peers, alpha, rng)
        )
    else:
        raise TllmError(f"unknown split {how!r}: choose iid or dirichlet")
    return _fill(parts)


def _by_quantity(rows, peers, alpha, rng) -> list[list]:
    import numpy as np

    shares = rng.dirichlet([alpha] * peers)
    order = rng.permutation(len(rows))
    cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(int)
    return [[rows[i] for i in chunk] for chunk in np.split(order, cuts)]


def _by_field(rows, peers, alpha, by, rng) -> list[list]:
    import numpy as np

    values: dict = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or by not in row:
            keys = ", ".join(sorted(row)) if isinstance(row, dict) else "none"
            raise TllmError(f"row {i + 1} has no field {by!r} to split by (its fields: {keys})")
        values.setdefault(str(row[by]), []).append(i)
    parts: list[list] = [[] for _ in range(peers)]
    for value in sorted(values):
        indices = rng.permutation(values[value])
        cuts = (np.cumsum(rng.dirichlet([alpha] * peers))[:-1] * len(indices)).astype(int)
        for p, chunk in enumerate(np.split(indices, cuts)):
            parts[p].extend(rows[i] for i in chunk)
    return parts


def _fill(parts: list[list]) -> list[list]:
    """Move rows from the largest parts until every part has MIN_ROWS."""
    for part in parts:
        while len(part) < MIN_ROWS:
            donor = max(parts, key=len)
            part.append(donor.pop())
    return parts
