"""A base model's fingerprint: a short hash of its config and tokenizer.

Adapters record the fingerprint of the base they were trained on, so an adapter is never
applied to a different base (even one with the same name). Fields that change with the
library version or the saving dtype are left out, so re-saving a model keeps its
fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

VOLATILE = {
    "transformers_version",
    "_name_or_path",
    "_model_name_or_path",
    "torch_dtype",
    "dtype",
    "architectures",
    "use_cache",
    "_commit_hash",
    "quantization_config",
}
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)


def fingerprint(model_dir: Path) -> str:
    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    digest = hashlib.sha256()
    stable = {k: v for k, v in config.items() if k not in VOLATILE}
    digest.update(json.dumps(stable, sort_keys=True).encode())
    for name in TOKENIZER_FILES:
        path = model_dir / name
        if path.exists():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    tok_config = model_dir / "tokenizer_config.json"
    template = model_dir / "chat_template.jinja"
    if template.exists():
        digest.update(template.read_bytes())
    elif tok_config.exists():
        digest.update(
            str(json.loads(tok_config.read_text(encoding="utf-8")).get("chat_template")).encode()
        )
    return digest.hexdigest()[:16]
