"""An adapter's GGUF form, kept in its own folder so the llama.cpp engine can apply it
without merging: `tllm export --adapter A --gguf-adapter` copies the GGUF LoRA to
`adapters/A/adapter.gguf` and records in `adapters/A/adapter.gguf.json` which base it was
made for and from which weights.

The engine uses it only while it still matches: the same base model (name, and fingerprint
where the base has a Hugging Face twin) and the same `adapter_model.safetensors` (retraining
an adapter replaces its folder, but a hand-copied file would not: the hash catches that).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from ..errors import TllmError, check_name
from ..home import Home
from ..models.fingerprint import fingerprint

FILE = "adapter.gguf"
RECORD = "adapter.gguf.json"


def _weights_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    with open(folder / "adapter_model.safetensors", "rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def install(
    adapter_path: Path, lora_file: Path, base: str, base_fingerprint: str, base_gguf: Path | None
) -> Path:
    """Copy `lora_file` (a GGUF LoRA of the adapter in `adapter_path`) into the adapter's
    folder, with its record. `base_gguf`: the GGUF model it applies to, when the base is
    not a GGUF model itself (the base's own f16 GGUF the export wrote)."""
    target = adapter_path / FILE
    partial = target.with_name(FILE + ".partial")
    shutil.copyfile(lora_file, partial)
    partial.replace(target)
    record = {
        "base": base,
        "base_fingerprint": base_fingerprint,
        "base_gguf": str(base_gguf) if base_gguf else None,
        "weights": _weights_hash(adapter_path),
    }
    (adapter_path / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return target


def gguf_lora(home: Home, adapter: str, entry) -> tuple[Path, Path] | None:
    """(GGUF model, GGUF LoRA) that run `adapter` on base model `entry` in llama.cpp, or None
    when the adapter has no GGUF form for that base (or its form is out of date)."""
    check_name(adapter, "adapter name")
    folder = home.adapters_dir / adapter
    if not all((folder / name).is_file() for name in (FILE, RECORD, "adapter_model.safetensors")):
        return None
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except ValueError:
        raise TllmError(
            f"adapter {adapter!r} has a damaged {RECORD}; re-run `tllm export "
            f"--adapter {adapter} --gguf-adapter --name NAME`"
        ) from None
    if record.get("base") != entry.name or record.get("weights") != _weights_hash(folder):
        return None
    if entry.hf_dir is not None:
        if fingerprint(entry.hf_dir) != record.get("base_fingerprint"):
            return None
    model = entry.gguf_path or (Path(record["base_gguf"]) if record.get("base_gguf") else None)
    if model is None or not model.is_file():
        return None
    return model, folder / FILE
