"""The reward model an rl run trains against: an rm adapter of the home, or a registered
model with a scalar head.

An adapter is accepted only if its card says the rm stage made it on the policy's own base
(the same fingerprint): the scorer is then that base with a one-output head, the adapter
merged in. A registered model is accepted only if its config is a sequence classifier with
one output. Both are checked from their card or config.json, before any weights load. The
loaded scorer is frozen, in eval mode, with the tokenizer it was trained with (pad token
and chat template set as the rm stage set them), so it scores a conversation as it learned to.
"""

from __future__ import annotations

from pathlib import Path

from ..adapters.store import adapter_dir, read_card
from ..errors import TllmError
from ..models.chat_template import DEFAULT_TEMPLATE
from ..models.fingerprint import fingerprint
from ..models.load_hf import read_config
from ..models.peft_cache import fit_cache_name
from ..models.registry import list_models


def check_reward(home, name: str, base_dir: Path) -> tuple[str, Path]:
    """("adapter", its folder) or ("model", its HF directory) for reward `name`, refused
    unless it is an rm adapter of the base in `base_dir` or a model with a scalar head."""

    if (home.adapters_dir / name / "adapter_config.json").is_file():
        card = read_card(home, name)
        if card.stage != "rm":
            made = f"by --stage {card.stage}" if card.stage else "without a card"
            raise TllmError(
                f"adapter {name!r} is not a reward model (it was made {made}); "
                f"train one with `tllm train --stage rm --data PREFERENCES --name {name}-rm`"
            )
        base = fingerprint(base_dir)
        if card.base_fingerprint != base:
            raise TllmError(
                f"reward adapter {name!r} was trained on another base ({card.base}, "
                f"fingerprint {card.base_fingerprint}) than this run's (fingerprint "
                f"{base}): it scores on its own base, so train the policy on "
                f"--base {card.base} or a reward model on this base"
            )
        return "adapter", adapter_dir(home, name, base)
    entry = next((e for e in list_models(home) if e.name == name), None)
    if entry is None:
        raise TllmError(
            f"no reward model named {name!r}: it is neither an adapter of this home "
            "nor a registered model; train one with `tllm train --stage rm`"
        )
    config = read_config(entry.hf_dir) if entry.hf_dir is not None else {}
    architectures = config.get("architectures") or [f"a {entry.kind} model"]
    scorer = any(a.endswith("ForSequenceClassification") for a in architectures)
    outputs = len(config.get("id2label") or {}) or config.get("num_labels", 2)
    if entry.hf_dir is None or not scorer or outputs != 1:
        found = ", ".join(architectures) + (f" with {outputs} outputs" if scorer else "")
        raise TllmError(
            f"model {name!r} has no scalar head ({found}): a reward model scores with "
            "one output; train one with `tllm train --stage rm`"
        )
    return "model", entry.hf_dir


def load_reward(home, name: str, base_dir: Path):
    """(frozen reward model in eval mode, its tokenizer) for reward `name` (check_reward)."""
    import torch
    import transformers

    kind, path = check_reward(home, name, base_dir)
    source = base_dir if kind == "adapter" else path
    # An adapter's base has no head of its own: transformers reports a new one, which the
    # adapter then replaces; that report would only mislead, so it is silenced.
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            source,
            num_labels=1,
            dtype=torch.float32,
            local_files_only=True,
            use_safetensors=True,
            ignore_mismatched_sizes=True,
        )
    finally:
        transformers.logging.set_verbosity(verbosity)
    tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_TEMPLATE  # as the rm stage rendered its pairs
    # The head scores the last real token; the model finds it from the pad id.
    model.config.pad_token_id = tokenizer.pad_token_id
    if kind == "adapter":
        from peft import PeftModel

        model = fit_cache_name(PeftModel.from_pretrained(model, path))
        if not model.peft_config["default"].is_prompt_learning:
            model = model.merge_and_unload()  # one plain model: faster, and TRL places it itself
    model.config._name_or_path = name  # TRL logs its rewards under this name
    model.requires_grad_(False)
    return model.eval(), tokenizer
