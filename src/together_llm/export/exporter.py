"""`tllm export`: a base model (with an adapter merged in, or beside it as a GGUF LoRA)
written into `exports/<name>/` in forms other tools run.

    exports/<name>/hf/                 the merged Hugging Face model (--merge, or for --gguf)
    exports/<name>/<name>-<type>.gguf  one GGUF a --gguf type (f16, q8_0, q4_k_m)
    exports/<name>/<name>-lora-f16.gguf  the adapter as a GGUF LoRA (--gguf-adapter)
    exports/<name>/Modelfile           for `ollama create`, when a GGUF was written
    exports/<name>/export.json         what was exported from what, and the files' sizes

Everything is checked before the slow work (names, types, the adapter's base fingerprint,
the architecture), and the export is written beside its final place and renamed into it,
so a failure leaves no half-written export and an earlier one survives.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..adapters.card import AdapterCard
from ..adapters.gguf_form import install
from ..adapters.store import adapter_dir, read_card
from ..errors import TllmError, check_name
from ..home import Home, replace_dir
from ..models import to_gguf as gguf_io
from ..models.fingerprint import fingerprint
from ..models.registry import get_model
from ..models.to_gguf import read_metadata
from .merge_into_base import check_adapter_fits
from .merge_into_base import merge as merge_model
from .modelfile import write_modelfile
from .quantize import check_types, quantize


@dataclass
class ExportResult:
    folder: Path
    files: dict[str, int] = field(default_factory=dict)  # path relative to folder -> bytes


def export(
    home: Home,
    name: str,
    *,
    model: str | None = None,
    adapter: str | None = None,
    merge: bool = False,
    gguf: Sequence[str] = (),
    gguf_adapter: bool = False,
    overwrite: bool = False,
    report=print,
) -> ExportResult:
    check_name(name, "export name")
    types = check_types(list(gguf))
    if not (merge or types or gguf_adapter):
        raise TllmError(
            "nothing to export: add --merge (a Hugging Face model), --gguf TYPE "
            "(a GGUF file) or --gguf-adapter (the adapter as a GGUF LoRA)"
        )
    if gguf_adapter and not adapter:
        raise TllmError("--gguf-adapter needs --adapter NAME")
    target = home.exports_dir / name
    if target.exists() and not overwrite:
        raise TllmError(
            f"an export named {name!r} already exists in {target.parent}; choose "
            "another --name or add --overwrite"
        )

    config = home.load_config()
    adapter_path = adapter_dir(home, adapter) if adapter else None
    lora_path = adapter_path if gguf_adapter else None  # the adapter to write as a GGUF LoRA
    card = read_card(home, adapter) if adapter else AdapterCard()
    entry = get_model(home, model or card.base or config.model)
    if entry.kind == "remote":
        raise TllmError(f"model {entry.name!r} is a remote endpoint; only local models export")
    if types or gguf_adapter:
        gguf_io.find_converter()  # before any slow work: refuses, with the fix, if missing
    base_dir = entry.transformers_dir(report)
    base_print = fingerprint(base_dir)
    if adapter_path is not None:
        check_adapter_fits(adapter_path, card, entry.name, base_print)
    if types or gguf_adapter:
        gguf_io.check_architecture(base_dir)
    if lora_path is not None:
        gguf_io.check_lora(lora_path)

    staging = target.with_name(f".{name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        record = _write(
            staging, name, entry, base_dir, adapter_path, merge, types, lora_path, config, report
        )
        record.update(
            base=entry.name,
            base_fingerprint=base_print,
            adapter=adapter,
            created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        )
        files = {
            str(p.relative_to(staging)): p.stat().st_size
            for p in sorted(staging.rglob("*"))
            if p.is_file()
        }
        record["files"] = files
        (staging / "export.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if lora_path is not None:  # the llama.cpp engine finds it in the adapter's folder
        base_gguf = target / f"{name}-base-f16.gguf"
        install(
            lora_path,
            target / record["gguf_adapter"],
            entry.name,
            base_print,
            None if entry.gguf_path or not base_gguf.is_file() else base_gguf,
        )
        report(f"adapter {adapter} now runs on llama.cpp too (adapters/{adapter}/adapter.gguf)")
    return ExportResult(target, files)


def _write(
    folder: Path,
    name: str,
    entry,
    base_dir: Path,
    adapter_path: Path | None,
    merge: bool,
    types: list[str],
    lora_path: Path | None,
    config,
    report,
) -> dict:
    """Write the requested forms into `folder`; return what export.json records."""

    record: dict = {"gguf": {}}
    template = None
    if merge or types:
        report(f"writing the merged model {name}/hf ...")
        merged = merge_model(base_dir, adapter_path, folder / "hf", report=report)
        template = (
            (merged / "chat_template.jinja").read_text(encoding="utf-8")
            if (merged / "chat_template.jinja").is_file()
            else None
        )
        record["hf"] = "hf"
    model_file = None
    if types:
        f16 = folder / f"{name}-f16.gguf"
        report("converting to GGUF (f16) with llama.cpp's converter ...")
        gguf_io.convert_model(folder / "hf", f16, name)
        for kind in types:
            if kind != "f16":
                report(f"quantizing to {kind} ...")
                quantize(f16, folder / f"{name}-{kind}.gguf", kind)
            record["gguf"][kind] = f"{name}-{kind}.gguf"
            _check_template(folder / f"{name}-{kind}.gguf", template)
        if "f16" not in types:
            f16.unlink()  # only the step towards the types asked for
        model_file = record["gguf"][types[0]]
    adapter_file = None
    if lora_path is not None:
        adapter_file = f"{name}-lora-f16.gguf"
        report(f"converting adapter {lora_path.name} to a GGUF LoRA ...")
        gguf_io.convert_adapter(lora_path, base_dir, folder / adapter_file)
        record["gguf_adapter"] = adapter_file
    if model_file is None and adapter_file:
        # The LoRA applies to the un-merged base, which Ollama and llama.cpp need as GGUF.
        model_file = str(entry.gguf_path) if entry.gguf_path else _base_gguf(folder, name, base_dir)
        template = gguf_io.read_metadata(
            Path(model_file) if Path(model_file).is_absolute() else folder / model_file,
            "tokenizer.chat_template",
        )["tokenizer.chat_template"]
    elif model_file:
        adapter_file = None  # the Modelfile runs the merged GGUF: the adapter is in it already
    if model_file:
        write_modelfile(
            folder,
            name,
            model_file,
            template,
            system_prompt=config.system_prompt,
            generation=config.to_dict().get("generation"),
            adapter_file=adapter_file,
        )
        record["modelfile"] = "Modelfile"
    return record


def _base_gguf(folder: Path, name: str, base_dir: Path) -> str:
    file = f"{name}-base-f16.gguf"
    gguf_io.convert_model(base_dir, folder / file, name)
    return file


def _check_template(path: Path, template: str | None) -> None:
    """The GGUF must carry the chat template the model was trained with: refuse to leave
    one that would be prompted differently."""

    stored = read_metadata(path, "tokenizer.chat_template")["tokenizer.chat_template"]
    if template and stored != template:
        raise TllmError(
            f"{path.name} does not carry the model's chat template "
            f"(found {str(stored)[:60]!r}); the converter did not copy it"
        )
