"""`tllm adapters merge`: combine LoRA adapters of one base into a new adapter with PEFT's
`add_weighted_adapter`, recording the parents, method and weights in its card.

Methods (PEFT's combination types):
- svd: adds the parents' weighted updates B·A exactly, then refactors the sum to a rank
  (the largest parent rank) by SVD; any ranks.
- cat: stacks the parents' A and B matrices; exact, rank = the sum of the parents' ranks.
- linear: a weighted sum of the A matrices and of the B matrices separately; cheap but
  approximate (the product of sums has cross terms); equal ranks.
- ties, dare_ties, dare_linear: prune each parent's A and B to `density` (by magnitude for
  TIES, at random and rescaled for DARE), resolve sign conflicts (the *_ties ones), then
  sum; equal ranks. DARE's random pruning follows `seed`.

Default weights: 1/n per parent (an average) for svd, cat, linear and dare_linear, which sum
their weighted parents; 1 per parent for ties and dare_ties, which average agreeing values.

Everything that can be refused (unknown adapters, other bases, incompatible configs, bad
weights) is refused from the JSON files, before the base model is loaded.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

from ..errors import RefusedError, TllmError, check_name
from ..home import Home
from ..methods import LORA, by_peft_type
from ..models.load_hf import load_hf
from .card import AdapterCard, Merged
from .save import save_result
from .store import adapter_dir, adapter_task, base_for, read_card

METHODS = ("svd", "linear", "ties", "dare_ties", "dare_linear", "cat")
SAME_RANK = ("linear", "ties", "dare_ties", "dare_linear")
USES_DENSITY = ("ties", "dare_ties", "dare_linear")
# Methods that average agreeing values themselves (TIES's disjoint mean) take weight 1 per
# parent by default; the others sum their weighted parents, so they default to 1/n each.
AVERAGING = ("ties", "dare_ties")
DEFAULT_DENSITY = 0.5


def plan_merge(
    home: Home,
    names: list[str],
    method: str,
    name: str,
    weights: list[float] | None = None,
    density: float | None = None,
    overwrite: bool = False,
) -> dict:
    """Check a merge from the adapters' JSON files alone; return what `merge_adapters` needs:
    {"dirs", "cards", "task", "base", "weights", "density"}."""
    if method not in METHODS:
        raise RefusedError(f"unknown merge method {method!r}; methods: {', '.join(METHODS)}")
    if len(names) < 2:
        raise RefusedError("name at least two adapters to merge")
    if len(set(names)) != len(names):
        raise RefusedError(
            "an adapter is named twice; give each parent once (use --weights to count one more)"
        )
    check_name(name, "adapter name")
    if name in names:
        raise RefusedError(
            f"the merged adapter cannot replace its parent {name!r}; choose another --name"
        )
    if (home.adapters_dir / name).exists() and not overwrite:
        raise TllmError(
            f"an adapter named {name!r} already exists; choose another --name or add --overwrite"
        )
    if weights is None:
        weights = [1.0 if method in AVERAGING else 1.0 / len(names)] * len(names)
    if len(weights) != len(names):
        raise RefusedError(f"{len(weights)} weights for {len(names)} adapters; give one each")
    if not all(math.isfinite(w) for w in weights):
        raise RefusedError("merge weights must be finite numbers")
    if method in USES_DENSITY:
        density = DEFAULT_DENSITY if density is None else density
        if not 0 < density <= 1:
            raise RefusedError(
                f"--density {density} is outside (0, 1]: it is the fraction "
                "of each parent's values kept"
            )
    elif density is not None:
        raise RefusedError(f"--density applies to {', '.join(USES_DENSITY)}, not {method}")

    dirs = [adapter_dir(home, n) for n in names]
    cards = [read_card(home, n) for n in names]
    configs = [_read_config(path, n) for path, n in zip(dirs, names)]
    for n, config, card in zip(names, configs, cards):
        _check_mergeable(n, config, card)
    fingerprints = {card.base_fingerprint for card in cards}
    if len(fingerprints) > 1:
        bases = ", ".join(f"{n}: {c.base} ({c.base_fingerprint})" for n, c in zip(names, cards))
        raise RefusedError(
            f"the adapters were trained on different base models ({bases}); "
            "only adapters of one base can be merged"
        )
    tasks = {adapter_task(config) for config in configs}
    if len(tasks) > 1:
        raise RefusedError(
            f"the adapters are for different tasks "
            f"({', '.join(str(c.get('task_type')) for c in configs)})"
        )
    if len({type(c.get("target_modules")) for c in configs}) > 1:
        raise RefusedError(
            "some adapters name their target modules as a list and others as "
            "a pattern; PEFT cannot merge that mix"
        )
    ranks = [c["r"] for c in configs]
    if method in SAME_RANK and (len(set(ranks)) > 1 or any(c.get("rank_pattern") for c in configs)):
        raise RefusedError(
            f"{method} merging needs adapters of one rank (these have ranks "
            f"{', '.join(map(str, ranks))}); use svd or cat for mixed ranks"
        )
    try:
        base = base_for(home, str(fingerprints.pop()))  # _check_mergeable: every card has one
    except TllmError as exc:
        raise RefusedError(str(exc)) from None
    return {
        "dirs": dirs,
        "cards": cards,
        "task": tasks.pop(),
        "base": base,
        "weights": weights,
        "density": density,
    }


def _read_config(path, name: str) -> dict:
    try:
        config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    except ValueError:
        raise TllmError(f"adapter {name!r} has a damaged adapter_config.json") from None
    return config if isinstance(config, dict) else {}


def _check_mergeable(name: str, config: dict, card: AdapterCard) -> None:
    method = by_peft_type(config.get("peft_type"))
    if method is None or not method.merges:
        raise RefusedError(
            f"adapter {name!r} is {config.get('peft_type')!r}; only LoRA adapters can be merged"
        )
    if not card.base_fingerprint:
        raise RefusedError(
            f"adapter {name!r} has no base fingerprint in its card, so it "
            "cannot be checked against the others' base"
        )
    if config.get("use_dora"):
        raise RefusedError(
            f"adapter {name!r} is DoRA: PEFT's merge does not combine DoRA magnitude vectors"
        )
    if config.get("use_rslora"):
        raise RefusedError(
            f"adapter {name!r} uses rsLoRA scaling, which PEFT's merge "
            "does not carry over correctly"
        )
    if config.get("modules_to_save") or config.get("target_parameters"):
        raise RefusedError(
            f"adapter {name!r} carries whole modules or parameters "
            "(a classifier head), which cannot be merged"
        )


def merge_adapters(
    home: Home,
    names: list[str],
    method: str,
    name: str,
    weights: list[float] | None = None,
    density: float | None = None,
    seed: int = 0,
    overwrite: bool = False,
    report=lambda message: None,
) -> AdapterCard:
    """Merge adapters `names` of one base into adapter `name`; return its card."""
    plan = plan_merge(home, names, method, name, weights, density, overwrite)
    import torch
    from peft import LoraConfig, PeftModel

    base = plan["base"]
    report(f"loading base {base.name} and {len(names)} adapters...")
    model, tokenizer = load_hf(base.hf_dir, plan["task"], dtype=torch.float32)
    parents = [f"parent{i}" for i in range(len(names))]
    model = PeftModel.from_pretrained(model, str(plan["dirs"][0]), adapter_name=parents[0])
    for path, parent in zip(plan["dirs"][1:], parents[1:]):
        model.load_adapter(str(path), adapter_name=parent)
    report(f"merging with {method}...")
    # The merged adapter is PEFT's "default" so that it saves at the folder's top level.
    combine(model, parents, plan["weights"], "default", method, plan["density"], seed)
    model.set_adapter("default")
    for parent in parents:
        model.delete_adapter(parent)
    merged = model.peft_config["default"]
    assert isinstance(merged, LoraConfig)  # every parent is a LoRA (plan_merge checks)
    card = merged_card(
        base.name,
        names,
        plan["cards"],
        method,
        plan["weights"],
        plan["density"],
        seed,
        merged.r,
    )
    recipe = SimpleNamespace(name=name, method=LORA.name, overwrite=overwrite)
    save_result(home, recipe, model, tokenizer, card, report=report)
    return read_card(home, name)


def combine(
    model,
    parents: list[str],
    weights: list[float],
    target: str,
    method: str,
    density: float | None,
    seed: int = 0,
) -> None:
    """Add adapter `target` to the PEFT `model`: its loaded adapters `parents` combined by
    `method` (checked by `plan_merge`), in memory. `together evolve` merges this way, many
    times over one loaded base."""
    import torch

    torch.manual_seed(seed)  # DARE prunes at random
    model.add_weighted_adapter(parents, weights, target, combination_type=method, density=density)


def merged_card(
    base: str,
    names: list[str],
    cards: list[AdapterCard],
    method: str,
    weights: list[float],
    density: float | None,
    seed: int,
    rank: int,
) -> AdapterCard:
    """The card of a merge of adapters `names` (whose cards are `cards`): the base, the
    method and weights, and each parent with its own lineage."""
    stages = {card.stage for card in cards}
    return AdapterCard(
        base=base,
        base_fingerprint=cards[0].base_fingerprint,
        stage=stages.pop() if len(stages) == 1 else None,
        method=LORA.name,
        rank=rank,
        provenance="merged",
        merge=Merged(
            method=method,
            weights=weights,
            density=density,
            seed=seed if method.startswith("dare") else None,
        ),
        parents=[card.lineage(n) for n, card in zip(names, cards)],
        nulls=frozenset({"stage"}),  # parents of several stages: the merge has none, said so
    )
