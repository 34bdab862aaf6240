"""The model a recipe trains: the base resolved to a Hugging Face directory, its context,
its precision, and the base loaded for the stage's task with the method applied (a PEFT
wrapper, or every weight for `full`).

`resolve_base`, `check_base` and `fit_context` only read config.json, so the method x
architecture pair is refused before torch is imported; `load_for_training` does the heavy
part."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..adapters.store import adapter_dir
from ..errors import TllmError
from ..methods import get_method
from ..models.families import architecture, check_method, peft_config
from ..models.fingerprint import fingerprint
from ..models.load_hf import load_hf, read_config
from ..models.peft_cache import fit_cache_name
from ..models.registry import get_model
from .recipe import Recipe

# Where config.json keeps the positions a model can see at once, first key present wins.
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "seq_length")


def resolve_base(home, name: str | None, report=print) -> tuple[str, Path]:
    """(model name, HF directory) of base `name` (default: assistant.yaml's model). A GGUF
    model is converted to its HF twin once, as the transformers engine does."""

    name = name or home.load_config().model
    entry = get_model(home, name)
    if entry.kind == "remote":
        raise TllmError(f"model {name!r} is a remote endpoint; training needs local weights")
    hf_dir = entry.transformers_dir(report)
    return name, Path(hf_dir)


def check_base(hf_dir: Path, method: str, task: str) -> dict:
    """The base's config.json, after the registry agreed to train it with `method`."""
    config = read_config(hf_dir)
    check_method(config["model_type"], method, task)
    return config


def fit_context(recipe: Recipe, config: dict[str, Any], report: Callable[[str], None]) -> None:
    """Cap max_length at the positions the base has (less the virtual tokens of the prompt
    methods): longer examples would index past its position table."""
    limit = next((int(config[k]) for k in CONTEXT_KEYS if config.get(k)), None)
    if limit is None:
        return
    if get_method(recipe.method).prompt_learning:
        limit -= recipe.num_virtual_tokens
    if recipe.max_length > limit:
        report(
            f"max_length {recipe.max_length} is more than {config['model_type']} "
            f"can see at once: using {limit}"
        )
        recipe.max_length = limit


def mixed_precision(recipe, model_type: str) -> bool:
    """Whether the recipe trains `model_type` with bf16 autocast. Measured on this project's
    2-core AVX512-BF16 CPU: a bf16 matrix product runs 3x the fp32 rate, and a LoRA step on
    the bundled model 2.3x faster, with the same loss to the third digit. The trained weights
    stay fp32, so small LoRA updates are not rounded away. `auto` leaves out hardware
    without fast bf16 and the architectures the registry knows autocast breaks."""

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
    return any(
        getattr(cpu, probe, lambda: False)()
        for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def load_for_training(
    hf_dir: Path,
    config: dict,
    recipe,
    task: str,
    labels: list[str] | None = None,
    start_weights: Path | None = None,
):
    """(model in train mode, tokenizer): the base (or, with init=random, a fresh model of the
    base's config) with the recipe's method applied; `labels` name a classifier's classes
    (a new head, one output each). Seeded, so the adapter's initial weights are the same in
    every run of the same recipe. `start_weights`: an adapter's safetensors to start from
    instead (--start-from; the recipe carries that adapter's rank and targets)."""
    import torch

    torch.manual_seed(recipe.seed)
    # fp32 weights: bf16 weights would round the small LoRA updates away; the fast bf16
    # products come from autocast in the loop (mixed_precision).
    model, tokenizer = load_hf(hf_dir, task, recipe.method, dtype=torch.float32, labels=labels)
    if recipe.init == "random":
        import transformers

        torch.manual_seed(recipe.seed)
        model = transformers.AutoModelForCausalLM.from_config(model.config, dtype=torch.float32)
    # A cache in train mode is wasted memory, and with packing it would let examples see
    # each other (inputs/packing.py): never build one.
    model.config.use_cache = False
    options = get_method(recipe.method).options(recipe)
    adapter = peft_config(config, recipe.method, task, **options)
    if adapter is not None:
        import peft

        torch.manual_seed(recipe.seed)
        model = fit_cache_name(peft.get_peft_model(model, adapter))
        if start_weights is not None:
            _start_from(model, start_weights)
    model.train()
    return model, tokenizer


def adapter_to_continue(home, recipe: Recipe, hf_dir: Path) -> Path | None:
    """--start-from: the weights file of the adapter to go on training, refused unless it is a
    LoRA adapter of this base. Its rank, alpha, targets and DoRA become the recipe's (and
    count as given, so the small-dataset settings leave them)."""
    if recipe.start_from is None:
        return None
    folder = adapter_dir(home, recipe.start_from, fingerprint(hf_dir))
    try:
        config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except ValueError:
        raise TllmError(
            f"adapter {recipe.start_from!r} has a damaged adapter_config.json"
        ) from None
    if config.get("peft_type") != "LORA":
        raise TllmError(
            f"--start-from continues a LoRA adapter; {recipe.start_from!r} is "
            f"{config.get('peft_type')!r}"
        )
    targets = config.get("target_modules")
    recipe.rank = int(config.get("r", recipe.rank))
    recipe.alpha = float(config.get("lora_alpha", recipe.alpha))
    recipe.target_modules = [targets] if isinstance(targets, str) else sorted(targets or [])
    recipe.dora = bool(config.get("use_dora", False))
    recipe.fixed = sorted({*recipe.fixed, "rank", "alpha", "target_modules", "dora"})
    return folder / "adapter_model.safetensors"


def continue_adapter(model, adapter, weights: Path):
    """The base wrapped in PEFT adapter `adapter`, holding the saved weights of the adapter
    training goes on from (--start-from). For the TRL stages, which would otherwise apply a
    fresh adapter themselves; TRL takes the base with the adapter off as the reference."""
    import peft

    model = peft.get_peft_model(model, adapter)
    _start_from(model, weights)
    return model


def _start_from(model, weights: Path) -> None:
    """Load an adapter's LoRA weights into the freshly made PEFT model of the same shape."""
    import peft
    from safetensors.torch import load_file

    state = load_file(weights)
    result = peft.set_peft_model_state_dict(model, state)
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    if unexpected:
        raise TllmError(
            f"{weights.parent.name}: {len(unexpected)} tensors do not fit the model being "
            f"trained (first: {unexpected[0]}); --start-from needs the same base and method"
        )


def load_tokenizer(hf_dir: Path) -> Any:
    """The base's own tokenizer (what encodes the training rows)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(hf_dir, local_files_only=True)
