"""Where a finished run's result goes: `adapters/<name>/` for PEFT methods, a registered
model directory `models/<name>/` for a method that trains every weight (`full`:
`Method.saves_full_model`).

An adapter folder holds exactly `adapter_config.json` and `adapter_model.safetensors` (what
`peft.PeftModel.from_pretrained` reads) plus `card.json` (base name and fingerprint, stage,
method, data, steps, metrics, run id). Both are written beside their final place and renamed
into it, so an existing result is replaced only when complete, and only with --overwrite.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

from ..errors import TllmError
from ..home import replace_dir
from ..methods import get_method
from ..models.chat_template import DEFAULT_TEMPLATE
from ..models.registry import add_model, list_models
from . import gguf_form
from .card import CARD_FILE, AdapterCard

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def result_path(home, recipe) -> Path:
    whole = get_method(recipe.method).saves_full_model
    return (home.models_dir if whole else home.adapters_dir) / recipe.name


def check_free(home, recipe) -> None:
    """Refuse, before training, to replace an existing adapter or model without --overwrite."""
    path = result_path(home, recipe)
    whole = get_method(recipe.method).saves_full_model
    what = "model" if whole else "adapter"
    if whole:
        entry = next((e for e in list_models(home) if e.name == recipe.name), None)
        if entry is not None and not (
            recipe.overwrite and entry.kind == "hf" and Path(entry.source) == path
        ):
            raise TllmError(
                f"a model named {recipe.name!r} already exists; choose another --name"
                + ("" if recipe.overwrite else " (or add --overwrite if this run made it)")
            )
    if path.exists() and not recipe.overwrite:
        raise TllmError(
            f"an {what} named {recipe.name!r} already exists in {path.parent}; "
            "choose another --name or add --overwrite"
        )


def save_result(
    home,
    recipe,
    model,
    tokenizer,
    card: AdapterCard,
    weights: dict | None = None,
    report=lambda message: None,
) -> Path:
    """Write the trained adapter (or full model) with its card, named and dated now, and an
    adapter's GGUF form when its base is a GGUF model; return its folder. `weights`: the
    state gathered from a sharded model (sharding.py) to write instead of the model's own."""
    whole = get_method(recipe.method).saves_full_model
    final = result_path(home, recipe)
    tmp = final.with_name(f".tmp-{recipe.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    if whole:
        _save_model(model, tokenizer, tmp, weights)
    else:
        # Training never resizes the vocabulary, so the base's embeddings need no copy in
        # the adapter, even when lm_head carries LoRA weights.
        model.save_pretrained(
            tmp, safe_serialization=True, save_embedding_layers=False, state_dict=weights
        )
        for extra in tmp.iterdir():  # PEFT adds a README.md model card: the card is ours
            if extra.name not in ADAPTER_FILES:
                shutil.rmtree(extra) if extra.is_dir() else extra.unlink()
        missing = [name for name in ADAPTER_FILES if not (tmp / name).is_file()]
        if missing:
            raise TllmError(f"PEFT did not write {', '.join(missing)} for adapter {recipe.name!r}")
    card = dataclasses.replace(card, name=recipe.name, created=time.strftime("%Y-%m-%dT%H:%M:%S"))
    card.write(tmp / CARD_FILE)
    replace_dir(tmp, final)
    if whole:
        _register(home, recipe.name, final)
    else:
        gguf_form.write_for_new(home, recipe.name, report)
    return final


def _save_model(model, tokenizer, folder: Path, weights: dict | None = None) -> None:
    model.config.use_cache = True  # the training setting is not the one to serve with
    model.save_pretrained(folder, safe_serialization=True, state_dict=weights)
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_TEMPLATE  # inference renders what training rendered
    tokenizer.save_pretrained(folder)


def _register(home, name: str, folder: Path) -> None:
    if not any(e.name == name for e in list_models(home)):
        add_model(home, name, str(folder))
