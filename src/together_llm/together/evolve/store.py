"""Where `tllm together evolve` keeps its work: a scratch folder per run, outside adapters/,
so that no candidate shows up among the assistant's adapters.

    together/evolve/<run-id>/
      results.json          settings, every score, each generation's table, the winner,
                            the adoption decision (rewritten after every candidate)
      candidates/<name>/    one merged candidate: PEFT files + card.json (parents, method,
                            weights, score); loads with peft.PeftModel.from_pretrained

Only the winner leaves the scratch folder, copied to adapters/<name>.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ...adapters import gguf_form
from ...adapters.card import CARD_FILE, AdapterCard
from ...errors import TllmError, check_name
from ...home import new_run_id as home_run_id
from ...home import replace_dir

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def evolve_root(home) -> Path:
    return home.together_dir / "evolve"


def new_run_id(home) -> str:
    return home_run_id(evolve_root(home), "evolve", label_first=True)


def run_folder(home, run_id: str, *, existing: bool) -> Path:
    """The folder of run `run_id`: one that exists (to resume), or a new one."""
    check_name(run_id, "evolve run id")
    folder = evolve_root(home) / run_id
    if existing and not (folder / "results.json").is_file():
        runs = sorted(p.parent.name for p in evolve_root(home).glob("*/results.json"))
        known = ", ".join(runs) or "none yet"
        raise TllmError(f"no evolve run {run_id!r} to resume in {evolve_root(home)}; runs: {known}")
    if not existing:
        if folder.exists():
            raise TllmError(
                f"evolve run {run_id!r} already exists; resume it with --resume {run_id}"
            )
        (folder / "candidates").mkdir(parents=True)
    return folder


def read_results(folder: Path) -> dict:
    try:
        data = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    except ValueError:
        raise TllmError(f"{folder / 'results.json'} is damaged; start a new run") from None
    if not isinstance(data, dict) or "settings" not in data:
        raise TllmError(f"{folder / 'results.json'} is not an evolve run's results")
    return data


def write_results(folder: Path, results: dict) -> None:
    """Replace results.json whole (written beside it, then renamed), so an interrupted run
    leaves the previous complete version."""
    tmp = folder / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(folder / "results.json")


def candidate_folder(folder: Path, name: str) -> Path:
    return folder / "candidates" / name


def read_candidate_card(folder: Path, name: str) -> AdapterCard | None:
    """The card of a candidate saved (and scored) by an earlier, interrupted attempt."""
    path = candidate_folder(folder, name)
    if not all((path / f).is_file() for f in (*ADAPTER_FILES, CARD_FILE)):
        return None
    try:
        card = AdapterCard.read(path / CARD_FILE)
    except ValueError:
        return None
    return card if card.evolve is not None and card.evolve.scores is not None else None


def save_candidate(model, key: str, folder: Path, name: str, card: AdapterCard) -> Path:
    """Write adapter `key` of the PEFT `model` as candidate `name`, with `card`."""
    final = candidate_folder(folder, name)
    tmp = final.with_name(f".tmp-{name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(
        tmp, selected_adapters=[key], safe_serialization=True, save_embedding_layers=False
    )
    written = tmp / key  # PEFT saves every adapter but "default" in a folder of its name
    kept = tmp.with_name(f"{tmp.name}-kept")
    kept.mkdir()
    for file in ADAPTER_FILES:
        (written / file).replace(kept / file)
    shutil.rmtree(tmp)
    card.write(kept / CARD_FILE)
    shutil.rmtree(final, ignore_errors=True)
    kept.rename(final)
    return final


def publish(home, source: Path, name: str, card: AdapterCard) -> Path:
    """Copy a candidate's PEFT files to adapters/<name> with `card`, replacing an adapter of
    that name only once the copy is complete."""
    final = home.adapters_dir / name
    tmp = final.with_name(f".tmp-{name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for file in ADAPTER_FILES:
        shutil.copyfile(source / file, tmp / file)
    card.write(tmp / CARD_FILE)
    replace_dir(tmp, final)
    gguf_form.write_for_new(home, name)
    return final
