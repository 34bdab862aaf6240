"""An adapter's GGUF form, kept in its own folder so the llama.cpp engine can apply it
without merging: `adapters/A/adapter.gguf`, with `adapters/A/adapter.gguf.json` recording
which base it was made for and from which weights. Training writes it when a LoRA on a GGUF
base is saved, and `ensure` writes it on first use for any other LoRA (imported, merged,
federated, evolved, or trained before this existed); `tllm export --gguf-adapter` too.
Import, merge, federation and evolution write it as soon as they save (`write_for_new`).

The engine uses it only while it still matches: the same base model (name, and fingerprint
where the base has a Hugging Face twin) and the same `adapter_model.safetensors` (retraining
an adapter replaces its folder, but a hand-copied file would not: the hash catches that).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from ..errors import RefusedError, TllmError, check_name
from ..home import Home
from ..models.fingerprint import fingerprint
from ..models.registry import get_model
from ..models.to_gguf import check_lora, convert_adapter
from .store import adapter_dir, read_card

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


def why_not_llama_cpp(adapter_path: Path) -> str | None:
    """Why llama.cpp cannot apply this adapter (its method, DoRA, whole trained modules), or
    None when it can once its GGUF form is written."""
    try:
        check_lora(adapter_path)
    except RefusedError as refused:
        return str(refused)
    return None


def ensure(home: Home, adapter: str, entry, report) -> tuple[Path, Path] | None:
    """`gguf_lora`, writing the GGUF LoRA first when it is missing or stale and llama.cpp can
    apply the adapter to base `entry` (a GGUF model). None when it cannot (a TllmError when
    writing it failed, e.g. llama.cpp's converter was never fetched)."""
    found = gguf_lora(home, adapter, entry)
    if found is not None or entry.gguf_path is None:
        return found
    try:
        folder = adapter_dir(home, adapter)
    except TllmError:
        return None  # unknown or unsafe: the engine choice says which
    if why_not_llama_cpp(folder):
        return None
    base_dir = entry.transformers_dir(report)  # the converter reads the base's config
    base = fingerprint(base_dir)
    try:
        adapter_dir(home, adapter, base)
    except TllmError:
        return None  # made for another base: the engine choice refuses it by name
    report(f"writing adapter {adapter!r} as a GGUF LoRA for llama.cpp (once per version) ...")
    with tempfile.TemporaryDirectory(prefix="tllm-lora-") as scratch:
        written = convert_adapter(folder, base_dir, Path(scratch) / FILE)
        install(folder, written, entry.name, base, None)
    return gguf_lora(home, adapter, entry)


def write_for_new(home: Home, adapter: str, report=lambda message: None) -> None:
    """Write a new adapter's GGUF form now, when its card names a GGUF base of this home, so
    that its first answer does not wait for it: what training, import, merge, federation
    and evolution do once the adapter is saved. A failure is only reported: the adapter is
    saved, and its first use tries again."""
    try:
        base = read_card(home, adapter).base
        entry = get_model(home, base) if base else None
        if entry is not None and entry.gguf_path is not None:
            ensure(home, adapter, entry, report)
    except TllmError as error:
        report(f"no GGUF LoRA for {adapter!r} yet (it is written on first use): {error}")


def serving_engine(home: Home, adapter: str, base: str | None) -> str:
    """Which engine answers with `adapter` on its base model `base`, and why: what
    `tllm adapters show` prints."""
    why = why_not_llama_cpp(home.adapters_dir / adapter)
    if why:
        return f"transformers ({why})"
    try:
        entry = get_model(home, base) if base else None
    except TllmError:
        entry = None
    if entry is None:
        return f"transformers (base {base or 'unknown'} is not a model of this home)"
    if entry.gguf_path is None:
        return (
            f"transformers (base {base} is no GGUF model; its merged GGUF export, "
            "`tllm export --gguf`, runs on llama.cpp)"
        )
    if gguf_lora(home, adapter, entry) is not None:
        return "llama.cpp (GGUF LoRA current)"
    return "llama.cpp (GGUF LoRA written on first use)"
