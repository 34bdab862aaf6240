"""The lineage of an adapter, read from its card: a merged card names its parents, each with
the lineage its own card passed on (adapters/merge.py LINEAGE), down to the adapters that
were trained or imported. Shown as a tree by `tllm together evolve`."""

from __future__ import annotations


def describe_node(card: dict) -> str:
    """One line of the tree: how this adapter came to be, and its fitness when evolved."""
    parts = []
    merge = card.get("merge")
    if isinstance(merge, dict):
        weights = ",".join(f"{w:g}" for w in merge.get("weights") or [])
        parts.append(f"{merge.get('method')} merge, weights {weights}")
        if merge.get("density") is not None:
            parts.append(f"density {merge['density']:g}")
    else:
        data = card.get("data")
        data = data.get("name") if isinstance(data, dict) else data
        if data:
            parts.append(
                f"trained on {data}" + (f", {card['steps']} steps" if card.get("steps") else "")
            )
        elif card.get("provenance"):
            parts.append(str(card["provenance"]))
    evolve = card.get("evolve")
    if isinstance(evolve, dict) and isinstance(evolve.get("scores"), dict):
        figures = ", ".join(f"{k} {v:.4g}" for k, v in evolve["scores"].items())
        where = f"generation {evolve['generation']}" if evolve.get("generation") else "evolved"
        parts.append(f"{where}: {figures}")
    return "; ".join(parts)


def lineage_lines(name: str, card: dict) -> list[str]:
    """The tree of `card` (adapter `name`) and its ancestors, one line per adapter."""
    lines = [_label(name, card)]
    _children(card, "", lines)
    return lines


def _label(name: str, card: dict) -> str:
    about = describe_node(card)
    return f"{name}  ({about})" if about else name


def _children(card: dict, indent: str, lines: list[str]) -> None:
    parents = [p for p in card.get("parents") or [] if isinstance(p, dict)]
    for i, parent in enumerate(parents):
        last = i == len(parents) - 1
        lines.append(
            f"{indent}{'└── ' if last else '├── '}{_label(str(parent.get('name')), parent)}"
        )
        _children(parent, indent + ("    " if last else "│   "), lines)


def ancestors(card: dict) -> list[str]:
    """The names of every ancestor of `card`, parents first, each once."""
    found: list[str] = []
    queue = [p for p in card.get("parents") or [] if isinstance(p, dict)]
    while queue:
        parent = queue.pop(0)
        name = parent.get("name")
        if isinstance(name, str) and name not in found:  # not None among the names
            found.append(name)
        queue.extend(p for p in parent.get("parents") or [] if isinstance(p, dict))
    return found
