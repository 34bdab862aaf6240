"""What `tllm optimize` measures: the assistant (its base model and adapter), the backends
that can run it here, and the GGUF files the llama.cpp backends need, made through the
exporter once and reused after.

Backends, by name:
    transformers-fp32   the reference every perplexity is compared with
    transformers-bf16   weights in bfloat16
    transformers-int8   torch dynamic quantization of every Linear layer (CPU)
    llama.cpp-f16, llama.cpp-q8_0, llama.cpp-q4_k_m
                        the model (with the adapter merged in) as GGUF files
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..adapters.store import adapter_dir
from ..errors import TllmError
from ..export.exporter import export
from ..export.merge_into_base import MERGEABLE
from ..home import Home
from ..models import to_gguf as gguf_io
from ..models.fingerprint import fingerprint
from ..models.registry import ModelEntry, add_model, get_model, list_models

BACKENDS = {
    "transformers-fp32": ("transformers", "fp32"),
    "transformers-bf16": ("transformers", "bf16"),
    "transformers-int8": ("transformers", "int8"),
    "llama.cpp-f16": ("llama.cpp", "f16"),
    "llama.cpp-q8_0": ("llama.cpp", "q8_0"),
    "llama.cpp-q4_k_m": ("llama.cpp", "q4_k_m"),
}
REFERENCE = "transformers-fp32"


@dataclass
class Subject:
    """The assistant being optimized: a base model and at most one adapter."""

    base: ModelEntry
    hf_dir: Path
    fingerprint: str
    adapter: str | None
    adapter_path: Path | None

    @property
    def label(self) -> str:
        return self.base.name + (f"-{self.adapter}" if self.adapter else "")


def exported_from(home: Home, entry) -> dict | None:
    """export.json of the export a GGUF model entry was registered from (its base and
    merged adapter), or None for any other model."""
    if entry.kind != "gguf":
        return None
    exports = (home.exports_dir).resolve()
    folder = Path(entry.source).resolve().parent
    record = folder / "export.json"
    if folder.parent != exports or not record.is_file():
        return None
    try:
        return json.loads(record.read_text(encoding="utf-8"))
    except ValueError:
        return None


def find_subject(home: Home, adapter: str | None, report) -> Subject:
    """The assistant's base and adapter (`adapter`, else the active one). A model that
    `tllm optimize` (or `tllm export`) made is traced back to the base and adapter it was
    exported from, so optimizing again measures the same assistant, not a copy of a copy."""

    config = home.load_config()
    entry = get_model(home, config.model)
    adapters = [adapter] if adapter else list(config.adapters)
    origin = exported_from(home, entry)
    if origin:
        entry = get_model(home, origin["base"])
        if not adapters and origin.get("adapter"):
            adapters = [origin["adapter"]]
    if entry.kind == "remote":
        raise TllmError(
            f"model {entry.name!r} is a remote endpoint; optimize measures local models"
        )
    if len(adapters) > 1:
        raise TllmError(
            f"{len(adapters)} adapters are active ({', '.join(adapters)}); optimize "
            "measures one: pass --adapter NAME"
        )
    hf_dir = entry.transformers_dir(report)
    base_print = fingerprint(hf_dir)
    name = adapters[0] if adapters else None
    path = adapter_dir(home, name, base_print) if name else None
    return Subject(entry, hf_dir, base_print, name, path)


def unavailable(backend: str, subject: Subject) -> str | None:
    """Why `backend` cannot run the subject here, or None when it can."""
    engine, form = BACKENDS[backend]
    adapter_kind = None
    if subject.adapter_path is not None:
        config = json.loads(
            (subject.adapter_path / "adapter_config.json").read_text(encoding="utf-8")
        )
        adapter_kind = str(config.get("peft_type", "")).upper()
    if engine == "transformers":
        import torch

        if form == "bf16":
            try:
                torch.ones(2, 2, dtype=torch.bfloat16) @ torch.ones(2, 2, dtype=torch.bfloat16)
            except RuntimeError:
                return "this torch cannot multiply bfloat16 on the CPU"
        if form == "int8":
            if set(torch.backends.quantized.supported_engines) <= {"none"}:
                return "this torch has no quantized CPU engine (fbgemm, x86, qnnpack)"
            if adapter_kind in ("PREFIX_TUNING", "P_TUNING", "PROMPT_TUNING"):
                return f"a {adapter_kind.lower()} adapter cannot be merged into int8 weights"
        return None

    if adapter_kind and adapter_kind not in MERGEABLE:
        return f"a {adapter_kind.lower()} adapter cannot be merged into a GGUF file"

    try:
        gguf_io.check_architecture(subject.hf_dir)  # also: is the converter fetched?
    except TllmError as exc:
        return str(exc).splitlines()[0]
    return None


def _current(record_file: Path, subject: Subject) -> bool:
    """Whether an export's record is of this base and adapter, made after the adapter's
    weights were last written."""
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
    except ValueError:
        return False
    if (record.get("base"), record.get("base_fingerprint"), record.get("adapter")) != (
        subject.base.name,
        subject.fingerprint,
        subject.adapter,
    ):
        return False
    if subject.adapter_path is not None:
        weights = subject.adapter_path / "adapter_model.safetensors"
        if record_file.stat().st_mtime < weights.stat().st_mtime:
            return False
    return True


def gguf_files(home: Home, subject: Subject, kinds: list[str], report) -> dict[str, Path]:
    """kind -> GGUF file of the subject (adapter merged), reusing any current export in
    exports/ and exporting only the kinds none holds."""

    found: dict[str, Path] = {}
    for record_file in sorted((home.exports_dir).glob("*/export.json")):
        if not _current(record_file, subject):
            continue
        gguf = json.loads(record_file.read_text(encoding="utf-8")).get("gguf") or {}
        for kind, file in gguf.items():
            if kind in kinds and kind not in found and (record_file.parent / file).is_file():
                found[kind] = record_file.parent / file
    missing = [kind for kind in kinds if kind not in found]
    if missing:
        name, n = f"optimize-{subject.label}", 1
        while (home.exports_dir / name).exists():
            n += 1
            name = f"optimize-{subject.label}-{n}"
        report(f"exporting {subject.label} as GGUF ({', '.join(missing)}) into exports/{name} ...")
        result = export(
            home,
            name,
            model=subject.base.name,
            adapter=subject.adapter,
            gguf=missing,
            report=report,
        )
        for kind in missing:
            found[kind] = result.folder / f"{name}-{kind}.gguf"
    else:
        report(
            "reusing the GGUF files already exported: "
            + ", ".join(str(path.relative_to(home.path)) for path in found.values())
        )
    return found


def register_gguf(home: Home, path: Path) -> str:
    """The registry name of GGUF `path`: an existing entry for that file, else a new one
    named after it."""

    path = path.resolve()
    for entry in list_models(home):
        if entry.kind == "gguf" and Path(entry.source) == path:
            return entry.name
    taken = {entry.name for entry in list_models(home)}
    name, n = path.stem, 1
    while name in taken:
        n += 1
        name = f"{path.stem}-{n}"
    add_model(home, name, str(path))
    return name
