"""Finding adapters in the home and checking they fit the base model they are applied to."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import TllmError, check_name
from ..home import Home


def list_adapters(home: Home) -> list[str]:
    return sorted(p.name for p in home.adapters_dir.iterdir()
                  if (p / "adapter_config.json").is_file())


def adapter_dir(home: Home, name: str, base_fingerprint: str | None = None) -> Path:
    """The directory of adapter `name`, refused if missing or trained on another base."""
    check_name(name, "adapter name")
    path = home.adapters_dir / name
    if not (path / "adapter_config.json").is_file():
        known = ", ".join(list_adapters(home)) or "none yet"
        raise TllmError(f"unknown adapter {name!r}; adapters: {known}")
    if not (path / "adapter_model.safetensors").is_file():
        raise TllmError(f"adapter {name!r} has no adapter_model.safetensors (other weight "
                        "formats can run code when unpickled and are never loaded)")
    card = path / "card.json"
    if base_fingerprint and card.is_file():
        try:
            trained_on = json.loads(card.read_text(encoding="utf-8")).get("base_fingerprint")
        except (ValueError, AttributeError):
            raise TllmError(f"adapter {name!r} has a damaged card.json") from None
        if trained_on and trained_on != base_fingerprint:
            raise TllmError(f"adapter {name!r} was trained on a different base model "
                            f"(fingerprint {trained_on}, this base is {base_fingerprint})")
    return path
