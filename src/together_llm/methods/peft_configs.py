"""How each method reads its options from a recipe and builds its PEFT config.

The architecture's part (LoRA's target modules, a prompt method's widths and layer count)
comes in as `sizes` from the family registry (models/families.py), which knows the
architectures; the recipe's options override every default. peft is imported only when a
config is built: it pulls in torch.
"""

from __future__ import annotations

from typing import Any

from .method import PeftSettings

# The defaults when no recipe gives options (models.families.peft_config called alone).
LORA_DEFAULTS = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05}
VIRTUAL_TOKENS = 8
ALL_LINEAR = "all-linear"  # every linear layer but the output head


def no_options(settings: PeftSettings) -> dict[str, Any]:
    """`full` has no PEFT options."""
    return {}


def lora_options(settings: PeftSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "r": settings.rank,
        "lora_alpha": settings.alpha,
        "lora_dropout": settings.dropout,
    }
    if list(settings.target_modules) == [ALL_LINEAR]:
        options["target_modules"] = ALL_LINEAR  # PEFT's word for it, as a string
    elif settings.target_modules:
        options["target_modules"] = list(settings.target_modules)
    if settings.dora:
        options["use_dora"] = True
    return options


def virtual_token_options(settings: PeftSettings) -> dict[str, Any]:
    return {"num_virtual_tokens": settings.num_virtual_tokens}


def lora_config(task_type: str, sizes: dict[str, Any], options: dict[str, Any]) -> Any:
    import peft

    defaults = {**LORA_DEFAULTS, **sizes}
    return peft.LoraConfig(task_type=task_type, **{**defaults, **options})


def prefix_config(task_type: str, sizes: dict[str, Any], options: dict[str, Any]) -> Any:
    import peft

    # P-tuning v2: deep prompts through a small MLP, which trains more steadily.
    defaults = {
        "num_virtual_tokens": VIRTUAL_TOKENS,
        **sizes,
        "prefix_projection": True,
        "encoder_hidden_size": sizes["token_dim"],
    }
    return peft.PrefixTuningConfig(task_type=task_type, **{**defaults, **options})


def ptuning_config(task_type: str, sizes: dict[str, Any], options: dict[str, Any]) -> Any:
    import peft

    defaults = {
        "num_virtual_tokens": VIRTUAL_TOKENS,
        **sizes,
        "encoder_hidden_size": sizes["token_dim"],
    }
    return peft.PromptEncoderConfig(task_type=task_type, **{**defaults, **options})


def prompt_config(task_type: str, sizes: dict[str, Any], options: dict[str, Any]) -> Any:
    import peft

    defaults = {"num_virtual_tokens": VIRTUAL_TOKENS, **sizes}
    return peft.PromptTuningConfig(task_type=task_type, **{**defaults, **options})
