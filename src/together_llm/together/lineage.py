"""The lineage of an adapter, read from its card: a merged card names its parents, each with
the lineage its own card passed on (adapters/card.py LINEAGE), down to the adapters that
were trained or imported. Shown as a tree by `tllm together evolve`."""

from __future__ import annotations

from ..adapters.card import AdapterCard


def describe_node(card: AdapterCard) -> str:
    """One line of the tree: how this adapter came to be, and its fitness when evolved."""
    parts = []
    merge = card.merge
    if merge is not None:
        weights = ",".join(f"{w:g}" for w in merge.weights or [])
        parts.append(f"{merge.method} merge, weights {weights}")
        if merge.density is not None:
            parts.append(f"density {merge.density:g}")
    else:
        data = card.data_name
        if data:
            parts.append(f"trained on {data}" + (f", {card.steps} steps" if card.steps else ""))
        elif card.provenance:
            parts.append(card.provenance)
    evolve = card.evolve
    if evolve is not None and evolve.scores is not None:
        figures = ", ".join(f"{k} {v:.4g}" for k, v in evolve.scores.items())
        where = f"generation {evolve.generation}" if evolve.generation else "evolved"
        parts.append(f"{where}: {figures}")
    return "; ".join(parts)


def lineage_lines(name: str, card: AdapterCard) -> list[str]:
    """The tree of `card` (adapter `name`) and its ancestors, one line per adapter."""
    lines = [_label(name, card)]
    _children(card, "", lines)
    return lines


def _label(name: str, card: AdapterCard) -> str:
    about = describe_node(card)
    return f"{name}  ({about})" if about else name


def _children(card: AdapterCard, indent: str, lines: list[str]) -> None:
    parents = card.parents or []
    for i, parent in enumerate(parents):
        last = i == len(parents) - 1
        lines.append(f"{indent}{'└── ' if last else '├── '}{_label(str(parent.name), parent)}")
        _children(parent, indent + ("    " if last else "│   "), lines)


def ancestors(card: AdapterCard) -> list[str]:
    """The names of every ancestor of `card`, parents first, each once."""
    found: list[str] = []
    queue = list(card.parents or [])
    while queue:
        parent = queue.pop(0)
        if parent.name is not None and parent.name not in found:
            found.append(parent.name)
        queue.extend(parent.parents or [])
    return found
