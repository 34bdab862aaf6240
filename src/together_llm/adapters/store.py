"""Finding adapters in the home and checking they fit the base model they are applied to."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import TllmError, check_name
from ..home import Home
from ..models.fingerprint import fingerprint as fingerprint_of
from ..models.registry import list_models
from .card import CARD_FILE, AdapterCard


def list_adapters(home: Home) -> list[str]:
    return sorted(
        p.name for p in home.adapters_dir.iterdir() if (p / "adapter_config.json").is_file()
    )


def adapter_dir(home: Home, name: str, base_fingerprint: str | None = None) -> Path:
    """The directory of adapter `name`, refused if missing or trained on another base."""
    check_name(name, "adapter name")
    path = home.adapters_dir / name
    if not (path / "adapter_config.json").is_file():
        known = ", ".join(list_adapters(home)) or "none yet"
        raise TllmError(f"unknown adapter {name!r}; adapters: {known}")
    if not (path / "adapter_model.safetensors").is_file():
        raise TllmError(
            f"adapter {name!r} has no adapter_model.safetensors (other weight "
            "formats can run code when unpickled and are never loaded)"
        )
    card = path / CARD_FILE
    if base_fingerprint and card.is_file():
        try:
            trained_on = AdapterCard.read(card).trained_on()
        except ValueError:
            raise TllmError(f"adapter {name!r} has a damaged card.json") from None
        if trained_on and trained_on != base_fingerprint:
            raise TllmError(
                f"adapter {name!r} was trained on a different base model "
                f"(fingerprint {trained_on}, this base is {base_fingerprint})"
            )
    return path


def read_card(home: Home, name: str) -> AdapterCard:
    """An adapter's card.json (empty for adapters imported without one)."""
    card = adapter_dir(home, name) / CARD_FILE
    if not card.is_file():
        return AdapterCard()
    try:
        return AdapterCard.read(card)
    except ValueError:
        raise TllmError(f"adapter {name!r} has a damaged card.json") from None


def adapter_summary(home: Home, name: str) -> dict:
    """What `tllm adapters list` shows of one adapter: its card's main facts, its size, and
    why it cannot be used, if it cannot (so one bad folder does not hide the others)."""
    path = home.adapters_dir / name
    weights = path / "adapter_model.safetensors"
    try:
        card = read_card(home, name)
        problem = None
    except TllmError as exc:
        card, problem = AdapterCard(), str(exc)
    try:
        config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    except ValueError:
        config, problem = {}, problem or f"adapter {name!r} has a damaged adapter_config.json"
    return {
        "name": name,
        "method": card.method or str(config.get("peft_type", "?")).lower(),
        "stage": card.stage,
        "base": card.base or config.get("base_model_name_or_path"),
        "data": card.data_name,
        "steps": card.steps,
        "bytes": weights.stat().st_size if weights.is_file() else None,
        "problem": problem,
    }


# PEFT's task_type of an adapter, as the task models/load_hf.py loads its base for.
TASK_OF_PEFT_TYPE = {
    "CAUSAL_LM": "causal-lm",
    "SEQ_2_SEQ_LM": "seq2seq",
    "SEQ_CLS": "classify",
    "FEATURE_EXTRACTION": "embed",
    None: None,
}


def adapter_task(config: dict) -> str | None:
    """The task whose base model adapter config `config` applies to (None: the family's own)."""
    task_type = config.get("task_type")
    if not isinstance(task_type, (str, type(None))) or task_type not in TASK_OF_PEFT_TYPE:
        raise TllmError(
            f"unsupported adapter task_type {task_type!r}; supported: "
            f"{', '.join(t for t in TASK_OF_PEFT_TYPE if t)}"
        )
    return TASK_OF_PEFT_TYPE[task_type]


def base_for(home: Home, fingerprint: str):
    """The registry entry of this home's model whose fingerprint is `fingerprint`: the base an
    adapter with that fingerprint in its card fits. Refused, listing the home's fingerprints,
    when none matches."""

    known = []
    for entry in list_models(home):
        if entry.hf_dir is None:
            continue  # a remote model, or a GGUF one not yet converted: no config to hash
        try:
            own = fingerprint_of(entry.hf_dir)
        except (OSError, ValueError):
            continue
        if own == fingerprint:
            return entry
        known.append(f"{entry.name}={own}")
    raise TllmError(
        f"no model in this home has base fingerprint {fingerprint} (this home: "
        f"{', '.join(known) or 'no local models'}; the default model has one once "
        "converted with `tllm models convert default`)"
    )
