"""The model a recipe trains: the base resolved to a Hugging Face directory, loaded for the
stage's task, with the method applied (a PEFT wrapper, or every weight for `full`).

`resolve_base` and `check_base` only read config.json, so the method x architecture pair is
refused before torch is imported; `load_for_training` does the heavy part."""

from __future__ import annotations

from pathlib import Path

from ..errors import TllmError
from ..models.families import check_method
from ..models.load_hf import read_config
from ..models.peft_cache import fit_cache_name


def resolve_base(home, name: str | None, report=print) -> tuple[str, Path]:
    """(model name, HF directory) of base `name` (default: assistant.yaml's model). A GGUF
    model is converted to its HF twin once, as the transformers engine does."""
    from ..models.registry import get_model

    name = name or home.load_config().model
    entry = get_model(home, name)
    if entry.kind == "remote":
        raise TllmError(f"model {name!r} is a remote endpoint; training needs local weights")
    hf_dir = entry.hf_dir
    if hf_dir is None:
        from ..models.convert import convert_gguf

        report(f"converting {name} to a transformers model once (tllm models convert)...")
        hf_dir = convert_gguf(entry.gguf_path, entry.local_dir, report=report)
    return name, Path(hf_dir)


def check_base(hf_dir: Path, method: str, task: str) -> dict:
    """The base's config.json, after the registry agreed to train it with `method`."""
    config = read_config(hf_dir)
    check_method(config["model_type"], method, task)
    return config


def peft_options(recipe) -> dict:
    """The recipe's PEFT options, in PEFT's own names, for the recipe's method."""
    if recipe.method in ("lora", "qlora"):
        options = {"r": recipe.rank, "lora_alpha": recipe.alpha, "lora_dropout": recipe.dropout}
        if recipe.target_modules:
            options["target_modules"] = list(recipe.target_modules)
        if recipe.dora:
            options["use_dora"] = True
        return options
    if recipe.method in ("prefix", "ptuning", "prompt"):
        return {"num_virtual_tokens": recipe.num_virtual_tokens}
    return {}


def mixed_precision(recipe, model_type: str) -> bool:
    """Whether the recipe trains `model_type` with bf16 autocast. Measured on this project's
    2-core AVX512-BF16 CPU: a bf16 matrix product runs 3x the fp32 rate, and a LoRA step on
    the bundled model 2.3x faster, with the same loss to the third digit. The trained weights
    stay fp32, so small LoRA updates are not rounded away. `auto` leaves out hardware
    without fast bf16 and the architectures the registry knows autocast breaks."""
    from ..models.families import architecture

    broken = architecture(model_type).no_autocast
    if recipe.precision == "bf16" and broken:
        raise TllmError(f"--precision bf16 cannot train {model_type}: {broken}; use fp32 or auto")
    if recipe.precision != "auto":
        return recipe.precision == "bf16"
    if broken:
        return False
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return any(getattr(cpu, probe, lambda: False)()
               for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def load_for_training(hf_dir: Path, config: dict, recipe, task: str,
                      labels: list[str] | None = None):
    """(model in train mode, tokenizer): the base (or, with init=random, a fresh model of the
    base's config) with the recipe's method applied; `labels` name a classifier's classes
    (a new head, one output each). Seeded, so the adapter's initial weights are the same in
    every run of the same recipe."""
    import torch

    from ..models.families import peft_config
    from ..models.load_hf import load_hf

    torch.manual_seed(recipe.seed)
    # fp32 weights: bf16 weights would round the small LoRA updates away; the fast bf16
    # products come from autocast in the loop (mixed_precision).
    model, tokenizer = load_hf(hf_dir, task, recipe.method, dtype=torch.float32, labels=labels)
    if recipe.init == "random":
        import transformers

        torch.manual_seed(recipe.seed)
        model = transformers.AutoModelForCausalLM.from_config(model.config, dtype=torch.float32)
    # A cache in train mode is wasted memory, and with packing it would let examples see
    # each other (data/packing.py): never build one.
    model.config.use_cache = False
    adapter = peft_config(config, recipe.method, task, **peft_options(recipe))
    if adapter is not None:
        import peft

        torch.manual_seed(recipe.seed)
        model = fit_cache_name(peft.get_peft_model(model, adapter))
    model.train()
    return model, tokenizer
