"""A peer's work in a round, on the project's own training code: load the global adapter
into the base (loaded once per process), train it a few steps on this home's rows with our
loop (train/loop.py) and a recipe built from the round's config, evaluate it, save it.

The recipe is an ordinary `Recipe` with a step budget: what `tllm train` would do for
`local-steps` steps, starting from the global adapter instead of a fresh one. Each round
draws its micro-batches in a new seeded order (seed + round), so successive rounds see
different rows rather than the same first few.
FedProx: with mu > 0 the loop adds mu/2·Σ‖w − w_global‖² over the adapter tensors to every
step's loss (Loop's `regularizer`), which pulls the local adapter towards the global one.
FFA-LoRA (config `freeze-a`): every lora_A is set from the seed and its own name, the same
on every machine, and frozen; only the trainable tensors (the B's) are ever in a state here.
"""

from __future__ import annotations

import tempfile
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

from ..adapters.card import AdapterCard
from ..adapters.save import save_result
from ..data.store import open_dataset
from ..errors import TllmError
from ..methods import LORA
from ..models.fingerprint import fingerprint
from ..train.batches import MicroBatches
from ..train.inputs.encode import Stats
from ..train.loop import Loop
from ..train.model import check_base, load_for_training, mixed_precision, resolve_base
from ..train.recipe import Recipe
from ..train.stages import check_kind, get_stage
from .settings import PeerConfig

_CACHE: dict = {}  # one loaded model per process: (key, (model, tokenizer, config))


def peer_base(home) -> tuple[str, Path, str]:
    """(model name, HF directory, fingerprint) of the base this home's assistant uses."""

    name, hf_dir = resolve_base(home, None, report=lambda message: None)
    return name, hf_dir, fingerprint(hf_dir)


def recipe_for(peer: PeerConfig, data: str) -> Recipe:
    """The Recipe of a round's peer config: `local_steps` steps of LoRA on `data`."""

    return Recipe(
        data=data,
        stage=peer.stage,
        method=LORA.name,  # what the federation aggregates: LoRA's A and B
        name=peer.name,
        max_steps=peer.local_steps,
        lr=peer.lr,
        batch_size=peer.batch_size,
        max_length=peer.max_length,
        rank=peer.rank,
        alpha=peer.alpha,
        dropout=peer.dropout,
        target_modules=peer.target_list,
        seed=peer.seed,
        scheduler="constant",
        optimizer=peer.optimizer,
        save_every=0,
        logging_every=peer.local_steps,
    )


def state_name(parameter: str) -> str:
    """The PEFT state-dict name of a model parameter (the adapter name dropped)."""
    return parameter.replace(".default.", ".")


def load_model(hf_dir: Path, recipe, freeze_a: bool = False):
    """(PEFT model, tokenizer, base config) for `recipe`, loaded once per process and reused:
    every round overwrites the adapter tensors anyway."""

    task = get_stage(recipe.stage).task
    key = (
        str(hf_dir),
        recipe.rank,
        recipe.alpha,
        recipe.dropout,
        tuple(recipe.target_modules),
        task,
        freeze_a,
        recipe.seed if freeze_a else None,
    )
    if _CACHE.get("key") != key:
        _CACHE.clear()
        config = check_base(hf_dir, recipe.method, task)
        model, tokenizer = load_for_training(hf_dir, config, recipe, task)
        if freeze_a:
            freeze_seeded_a(model, recipe.seed)
        _CACHE.update(key=key, value=(model, tokenizer, config))
    return _CACHE["value"]


def freeze_seeded_a(model, seed: int) -> None:
    """Set every lora_A to PEFT's initial distribution (uniform in ±1/√in_features, what
    kaiming_uniform with a=√5 draws) from a generator seeded by `seed` and the tensor's
    name, then freeze it: every peer and the server build the same A's without sending
    them."""

    import torch

    for full, param in model.named_parameters():
        if ".lora_A." not in full:
            continue
        name = state_name(full)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
        bound = param.shape[1] ** -0.5
        with torch.no_grad():
            values = (torch.rand(param.shape, generator=generator) * 2 - 1) * bound
            param.copy_(values.to(param.dtype))
        param.requires_grad_(False)


def adapter_state(model) -> dict:
    """The trainable adapter tensors of `model` (PEFT names, without the adapter name):
    what travels. Frozen ones (FFA-LoRA's A's) are left out."""
    from peft import get_peft_model_state_dict

    # save_embedding_layers=False: with lm_head among the targets PEFT would otherwise add
    # the base's whole output matrix, and base weights never travel
    state = get_peft_model_state_dict(model, save_embedding_layers=False)
    frozen = {
        state_name(full) for full, param in model.named_parameters() if not param.requires_grad
    }
    return {k: v.detach().clone() for k, v in state.items() if k not in frozen}


def load_state(model, state: dict) -> None:
    """Put `state` (adapter tensors by PEFT name) into `model`, refusing other names."""
    from peft import set_peft_model_state_dict

    own = adapter_state(model)
    if set(own) != set(state):
        raise TllmError(
            "the global adapter's tensors do not fit this peer's model (another "
            "rank, target modules or base)"
        )
    result = set_peft_model_state_dict(model, state)
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise TllmError(f"unexpected adapter tensors: {unexpected[:3]}")


def examples(home, recipe, split: str | None, tokenizer) -> list[dict]:
    """Token examples of the home's dataset `recipe.data` (split: "train", "eval" or None)."""

    stage = get_stage(recipe.stage)
    assert stage.encode is not None  # a peer trains an own-loop stage (settings.STAGES)
    dataset = open_dataset(home, recipe.data)
    check_kind(stage, dataset.name, dataset.kind)
    if split is not None and not dataset.has_splits:
        if split == "eval":
            return []
        split = None
    return stage.encode(dataset.rows(split), tokenizer, recipe.max_length, Stats(), None)


def _loop(
    model,
    recipe,
    tokenizer,
    train_examples,
    eval_examples,
    steps,
    regularizer=None,
    round_seed: int = 0,
):
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def make(rows: list[dict], shuffle: bool) -> MicroBatches:
        return MicroBatches(
            rows,
            recipe.batch_size,
            recipe.seed + round_seed,
            recipe.packing,
            pad or 0,
            recipe.max_length,
            shuffle,
        )

    # an evaluation-only loop (no training rows) still needs training batches: the held-out ones
    train = make(train_examples, True) if train_examples else make(eval_examples, False)
    return Loop(
        model,
        recipe,
        train,
        make(eval_examples, False) if eval_examples else None,
        steps,
        Path(tempfile.gettempdir()) / "tllm-together",
        task=get_stage(recipe.stage).task,
        bf16=mixed_precision(recipe, model.config.model_type),
        regularizer=regularizer,
    )


def proximal(global_state: dict, mu: float):
    """FedProx's term mu/2·Σ‖w − w_global‖² over the adapter tensors, as a regularizer."""

    def term(model):
        import torch

        total = torch.zeros(())
        for name, param in _adapter_params(model, global_state):
            total = total + (param - global_state[name].to(param.device)).pow(2).sum()
        return mu / 2 * total

    return term


def _adapter_params(model, names) -> list:
    """(PEFT state name, parameter) of the trainable adapter tensors named in `names`."""
    found = []
    for full, param in model.named_parameters():
        if param.requires_grad:
            short = state_name(full)
            if short in names:
                found.append((short, param))
    return found


def train_round(
    home, data: str, peer: PeerConfig, global_state: dict, server_round: int, mu: float = 0.0
) -> tuple[dict, dict]:
    """Train the global adapter `peer.local_steps` steps on this home's rows; return
    (new adapter tensors, metrics: train_loss, examples, steps, seconds, proximal)."""

    recipe = recipe_for(peer, data)
    _, hf_dir, _ = peer_base(home)
    model, tokenizer, _ = load_model(hf_dir, recipe, peer.freeze_a)
    load_state(model, global_state)
    rows = examples(home, recipe, "train", tokenizer)
    if not rows:
        raise TllmError(f"dataset {data!r} gives no training examples in {home.path}")
    frozen = {k: v.clone() for k, v in global_state.items()}
    regularizer = proximal(frozen, mu) if mu > 0 else None
    start = time.perf_counter()
    model.train()
    loop = _loop(model, recipe, tokenizer, rows, [], recipe.max_steps, regularizer, server_round)
    progress = loop.run()
    new_state = adapter_state(model)
    drift = sum(float((new_state[k] - frozen[k]).pow(2).sum()) for k in frozen)
    return new_state, {
        "train_loss": float(progress.train_loss),
        "num-examples": len(rows),
        "steps": progress.step,
        "seconds": time.perf_counter() - start,
        "drift": drift**0.5,
    }


def evaluate(home, data: str, peer: PeerConfig, state: dict, split: str | None = "eval") -> dict:
    """{"eval_loss", "num-examples"} of adapter `state` on the home's `split` rows
    (num-examples 0 and no loss when there are none)."""
    recipe = recipe_for(peer, data)
    _, hf_dir, _ = peer_base(home)
    model, tokenizer, _ = load_model(hf_dir, recipe, peer.freeze_a)
    load_state(model, state)
    rows = examples(home, recipe, split, tokenizer)
    if not rows:
        return {"num-examples": 0}
    loss = _loop(model, recipe, tokenizer, [], rows, 1).evaluate()["eval_loss"]
    return {"eval_loss": float(loss), "num-examples": len(rows)}


def save(home, peer: PeerConfig, state: dict, card: AdapterCard) -> Path:
    """Write adapter `state` as adapters/<peer.name> of `home`, with `card`."""

    recipe = recipe_for(peer, card.data_name or "none")
    _, hf_dir, _ = peer_base(home)
    model, tokenizer, _ = load_model(hf_dir, recipe, peer.freeze_a)
    load_state(model, state)
    target = SimpleNamespace(name=recipe.name, method=recipe.method, overwrite=True)
    return save_result(home, target, model, tokenizer, card)
