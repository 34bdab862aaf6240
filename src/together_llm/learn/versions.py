"""The versions of the assistant's adapter: every candidate `tllm improve` adopted, kept
whole, and which one answers now.

    learn/versions/<adapter>/<N>/    the adapter's folder as adopted (PEFT files, card.json
                                     with its `improved` section, its GGUF LoRA)
    learn/versions/<adapter>/current the number of the version in adapters/<adapter>/

`adapters/<adapter>/` always holds a copy of the current version, so everything that runs
adapters (ask, chat, serve, export, exchange) uses it as any other adapter; the server sees
its weights change and loads the new version without a restart. A rollback copies an older
version back and makes it current; nothing is deleted, so a rollback can be undone by
rolling forward (`rollback me@3`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path

from ..adapters.card import CARD_FILE, AdapterCard, Improved
from ..errors import TllmError, check_name
from ..home import Home, replace_dir

_VERSION = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)@(?P<n>\d+)$")


def parse_version(text: str) -> tuple[str, int]:
    """("me", 2) for "me@2"."""
    match = _VERSION.match(text.strip())
    if not match:
        raise TllmError(f"name a version as ADAPTER@N (for example me@2), not {text!r}")
    return check_name(match["name"], "adapter name"), int(match["n"])


class Versions:
    def __init__(self, home: Home, adapter: str):
        self.home = home
        self.adapter = check_name(adapter, "adapter name")
        self.folder = home.path / "learn" / "versions" / adapter

    def numbers(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return sorted(int(p.name) for p in self.folder.iterdir() if p.name.isdigit())

    def current(self) -> int | None:
        """The version adapters/<adapter>/ holds; None before the first adoption."""
        try:
            number = int((self.folder / "current").read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None
        return number if number in self.numbers() else None

    def path(self, number: int) -> Path:
        path = self.folder / str(number)
        if not (path / "adapter_config.json").is_file():
            known = ", ".join(f"{self.adapter}@{n}" for n in self.numbers()) or "none yet"
            raise TllmError(f"no version {self.adapter}@{number}; versions: {known}")
        return path

    def card(self, number: int) -> AdapterCard:
        try:
            return AdapterCard.read(self.path(number) / CARD_FILE)
        except (OSError, ValueError):
            raise TllmError(f"version {self.adapter}@{number} has a damaged card.json") from None

    def improved(self, number: int) -> Improved:
        return self.card(number).improved or Improved(version=number)

    def adopt(self, candidate: Path, improved: Improved) -> int:
        """Keep `candidate` (an adapter folder) as the next version, with `improved` in its
        card, and make it current. Returns its number."""
        number = max(self.numbers(), default=0) + 1
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = self.folder / f".new-{number}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(candidate, staging)
        card = AdapterCard.read(staging / CARD_FILE)
        card = dataclasses.replace(
            card,
            name=self.adapter,
            provenance="improved",
            improved=dataclasses.replace(improved, version=number),
        )
        card.write(staging / CARD_FILE)
        staging.rename(self.folder / str(number))
        self._install(number)
        return number

    def rollback(self, number: int) -> None:
        """Make version `number` current again, exactly as it was adopted."""
        self.path(number)
        self._install(number)

    def _install(self, number: int) -> None:
        target = self.home.adapters_dir / self.adapter
        staging = target.with_name(f".tmp-{self.adapter}-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(self.path(number), staging)
        replace_dir(staging, target)
        tmp = self.folder / f".current-{os.getpid()}"
        tmp.write_text(f"{number}\n", encoding="utf-8")
        tmp.replace(self.folder / "current")


def make_active(home: Home, adapter: str) -> None:
    """The assistant a person teaches is the one they talk to: after an adoption, ask, chat
    and serve answer with the adapter (a running server sees assistant.yaml change)."""
    config = home.load_config()
    if config.adapters != [adapter]:
        config.adapters = [adapter]
        home.save_config(config)
