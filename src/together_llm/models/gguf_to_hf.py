"""GGUF -> Hugging Face directory, so a GGUF model can be trained and served by
transformers.

transformers dequantizes GGUF weights on load; we rebuild a plain model from that config
without its `quantization_config` and save it as safetensors (float32, the dtype CPU
training wants), with the tokenizer and the GGUF's own chat template, so that prompts
render identically on both engines. A `tllm-model.json` beside the files records the
source and the fingerprint. Writing goes to a temporary directory renamed at the end, so
an interrupted conversion leaves nothing half-written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import TllmError
from ..home import replace_dir
from . import gguf_file
from .fingerprint import fingerprint

MARKER = "tllm-model.json"


def convert_gguf(gguf_path: Path, out_dir: Path, report=print) -> Path:
    """Write the HF twin of `gguf_path` into `out_dir` and return it."""
    gguf_file.check_header(gguf_path)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    folder, name = str(gguf_path.parent), gguf_path.name
    report(f"reading {gguf_path.name} (dequantizing weights)...")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as exc:
        raise TllmError(
            f"transformers could not read {gguf_path}: {type(exc).__name__}: {exc}"
        ) from None

    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    result = model.load_state_dict(loaded.state_dict(), strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(result.missing_keys) - tied or result.unexpected_keys:
        raise TllmError(
            f"converting {gguf_path.name} left weights unmatched (missing: "
            f"{result.missing_keys[:5]}, unexpected: {result.unexpected_keys[:5]})"
        )
    model.tie_weights()
    del loaded

    template = gguf_file.read_field(gguf_path, "tokenizer.chat_template")
    if template:
        tokenizer.chat_template = template

    tmp = out_dir.with_name(out_dir.name + ".converting")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    report(f"writing {out_dir} ...")
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    marker = {"source": str(gguf_path), "format": "gguf", "fingerprint": fingerprint(tmp)}
    (tmp / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
    replace_dir(tmp, out_dir)  # a good earlier conversion survives until the new one is in place
    return out_dir
