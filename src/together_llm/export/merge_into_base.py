"""A base model with an adapter folded into its weights, saved as a plain Hugging Face
model directory: what llama.cpp's converter reads and any transformers user can load.

The tokenizer files carry the chat template training rendered with (the base's own, or
ChatML for a base without one, as training and inference use), so the exported model is
prompted exactly as it was taught.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..adapters.card import AdapterCard
from ..errors import TllmError
from ..models.chat_template import DEFAULT_TEMPLATE
from ..models.load_hf import load_hf

# PEFT methods whose weights fold into the base's; prompt-learning methods (prefix,
# prompt, p-tuning) add virtual tokens that no plain model can hold.
MERGEABLE = ("LORA", "IA3", "LOHA", "LOKR", "ADALORA", "OFT", "BOFT", "VERA", "FOURIERFT")


def check_adapter_fits(
    adapter_path: Path, card: AdapterCard, base_name: str, base_fingerprint: str
) -> dict:
    """The adapter's config, refused if its card says it was trained on another base, or
    if it cannot merge."""
    adapter = adapter_path.name
    try:
        trained_on = card.trained_on()
    except ValueError as error:
        raise TllmError(f"adapter {adapter!r} has a damaged card.json: {error}") from None
    if trained_on and trained_on != base_fingerprint:
        raise TllmError(
            f"adapter {adapter!r} was trained on a different base (fingerprint {trained_on}, "
            f"from model {card.base or '?'!r}) than {base_name!r} (fingerprint "
            f"{base_fingerprint}); merging it would give a broken model. Export it with "
            f"--model {card.base or 'THE-BASE-IT-WAS-TRAINED-ON'}"
        )
    try:
        config = json.loads((adapter_path / "adapter_config.json").read_text(encoding="utf-8"))
    except ValueError:
        raise TllmError(f"adapter {adapter!r} has a damaged adapter_config.json") from None
    kind = str(config.get("peft_type", "")).upper()
    if kind not in MERGEABLE:
        raise TllmError(
            f"adapter {adapter!r} is {kind.lower() or 'of an unknown kind'}: it adds "
            "virtual tokens that cannot be merged into a model's weights; "
            f"mergeable kinds: {', '.join(k.lower() for k in MERGEABLE)}"
        )
    return config


def merge(base_dir: Path, adapter_path: Path | None, out_dir: Path, report=print) -> Path:
    """Write base (+ adapter, merged) into `out_dir` as safetensors with its tokenizer."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    model, tokenizer = load_hf(base_dir, task="causal-lm")
    if adapter_path is not None:
        from peft import PeftModel

        report(f"merging adapter {adapter_path.name} into the base weights...")
        model = PeftModel.from_pretrained(model, str(adapter_path)).merge_and_unload()
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_TEMPLATE  # what training and inference render
    model.config.use_cache = True
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    _keep_template_in_config(out_dir, tokenizer.chat_template)
    return out_dir


def _keep_template_in_config(out_dir: Path, template: str) -> None:
    """transformers 5 saves the template as chat_template.jinja only; older readers (and
    llama.cpp's converter, through its own loader) look in tokenizer_config.json too, so
    the template goes in both."""
    path = out_dir / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if config.get("chat_template") != template:
        config["chat_template"] = template
        path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
