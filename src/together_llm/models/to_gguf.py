"""HF model directory -> GGUF, and a LoRA adapter -> GGUF adapter, with llama.cpp's own
converter scripts (llamacpp_scripts.py), plus reading back what a written GGUF carries.

Architectures are checked before anything heavy runs: the converter's table of supported
architectures (`TEXT_MODEL_MAP` in its `conversion/__init__.py`) is read as text, so the
refusal lists exactly what the fetched converter can handle.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from ..errors import RefusedError, TllmError
from ..methods import by_peft_type
from .llamacpp_scripts import converter_dir, find_converter, run_script


def supported_architectures() -> list[str]:
    """The HF architectures (config.json `architectures`) the converter turns into GGUF."""
    find_converter()  # refuses, with the fix, when the converter was never fetched
    source = (converter_dir() / "conversion" / "__init__.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "TEXT_MODEL_MAP"
            and node.value is not None
        ):
            return sorted(ast.literal_eval(node.value))
    raise TllmError(
        "the fetched llama.cpp converter has no TEXT_MODEL_MAP; re-run scripts/fetch-converter"
    )


def check_architecture(model_dir: Path) -> str:
    """The model's architecture, refused (listing the supported ones) if the converter
    cannot handle it."""
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    names = config.get("architectures") or []
    supported = supported_architectures()
    for name in names:
        if name in supported:
            return name
    shown = ", ".join(names) or f"model_type {config.get('model_type')!r} with no architectures"
    raise RefusedError(
        f"llama.cpp's converter cannot turn {shown} into GGUF; it supports: {', '.join(supported)}"
    )


def convert_model(model_dir: Path, out_file: Path, name: str, outtype: str = "f16") -> Path:
    """Write `model_dir` as one GGUF file of `outtype` (f16, f32, bf16 or q8_0)."""
    check_architecture(model_dir)
    partial = out_file.with_name(out_file.name + ".partial")
    run_script(
        "convert_hf_to_gguf.py",
        [str(model_dir), "--outtype", outtype, "--outfile", str(partial), "--model-name", name],
        f"converting {model_dir.name} to GGUF",
    )
    partial.replace(out_file)
    return out_file


def check_lora(adapter_path: Path) -> None:
    """Refuse an adapter llama.cpp cannot apply as a GGUF adapter (only LoRA converts)."""
    config = json.loads((adapter_path / "adapter_config.json").read_text(encoding="utf-8"))
    kind = str(config.get("peft_type", "unknown")).lower()
    method = by_peft_type(kind)
    if method is None or method.gguf_adapter is None:
        raise RefusedError(
            f"--gguf-adapter takes a LoRA adapter; {adapter_path.name!r} is "
            f"{kind} (export it merged with --gguf instead)"
        )
    if config.get("use_dora"):
        raise RefusedError(
            f"adapter {adapter_path.name!r} is DoRA: llama.cpp applies plain LoRA, not "
            "DoRA's magnitude vectors, so it runs on the transformers engine (or export "
            "it merged with --gguf)"
        )
    if config.get("modules_to_save"):
        raise RefusedError(
            f"adapter {adapter_path.name!r} also trains whole modules "
            f"({', '.join(config['modules_to_save'])}), which a GGUF LoRA cannot "
            "hold; export it merged with --gguf instead"
        )


def convert_adapter(
    adapter_path: Path, base_dir: Path, out_file: Path, outtype: str = "f16"
) -> Path:
    """Write a PEFT LoRA adapter as a GGUF LoRA adapter for the base in `base_dir` (its
    config is all the converter reads), which llama.cpp applies at load time."""
    check_lora(adapter_path)
    check_architecture(base_dir)
    partial = out_file.with_name(out_file.name + ".partial")
    run_script(
        "convert_lora_to_gguf.py",
        [
            str(adapter_path),
            "--base",
            str(base_dir),
            "--outtype",
            outtype,
            "--outfile",
            str(partial),
        ],
        f"converting adapter {adapter_path.name} to GGUF",
    )
    partial.replace(out_file)
    return out_file


def read_metadata(path: Path, *keys: str) -> dict:
    """Metadata values of a GGUF file, read with the `gguf` package (strings decoded)."""
    from gguf import GGUFReader
    from gguf.constants import GGUFValueType

    reader = GGUFReader(str(path))
    values: dict[str, Any] = {}  # strings, numbers or None
    for key in keys:
        field = reader.get_field(key)
        if field is None:
            values[key] = None
        elif field.types and field.types[0] == GGUFValueType.STRING:
            values[key] = bytes(field.parts[field.data[0]]).decode("utf-8")
        else:
            values[key] = field.parts[field.data[0]].tolist()[0] if field.data else None
    return values
