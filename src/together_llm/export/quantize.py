"""Quantizing an f16 GGUF with llama.cpp's own quantizer (`llama_model_quantize`, through
llama-cpp-python), so the result is exactly what the llama.cpp engine would make itself."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from ..errors import TllmError

# What `--gguf` accepts: f16 is the converter's own output; the others are quantized from
# it. Values are llama.cpp's `llama_ftype` names (LLAMA_FTYPE_MOSTLY_*).
GGUF_TYPES = {"f16": "F16", "q8_0": "Q8_0", "q4_k_m": "Q4_K_M"}


def check_types(types: list[str]) -> list[str]:
    """The requested types in a stable order, lower-cased, refusing unknown ones before any
    work starts."""
    wanted = []
    for name in types:
        key = name.lower()
        if key not in GGUF_TYPES:
            raise TllmError(f"unknown GGUF type {name!r}; known types: {', '.join(GGUF_TYPES)}")
        if key not in wanted:
            wanted.append(key)
    return wanted


def quantize(source: Path, target: Path, kind: str) -> Path:
    """Write `source` (an f16 or f32 GGUF) quantized to `kind` as `target`."""
    import llama_cpp

    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{GGUF_TYPES[check_types([kind])[0]]}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    with _captured_output() as log:
        code = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params)
        if code != 0 or not partial.is_file():
            partial.unlink(missing_ok=True)
            tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-5:])
            raise TllmError(
                f"llama.cpp could not quantize {source.name} to {kind} (code {code}):\n{tail}"
            )
    partial.replace(target)
    return target


@contextlib.contextmanager
def _captured_output():
    """Send what the C library prints (a line per tensor) to a file instead of the
    terminal; yields the file's path, so a failure can show its last lines."""
    with tempfile.TemporaryDirectory(prefix="tllm-quantize-") as tmp:
        log = Path(tmp) / "log"
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        with open(log, "wb") as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield log
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])
