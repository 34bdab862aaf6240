"""The model-family registry: what each architecture is, what it serves, how PEFT trains it.

One row per architecture (`ARCHITECTURES`) says its family, the tasks it serves, the LoRA target
modules, what in it some training methods cannot work with and why (an attention that takes no
key/value cache, a classifier that reads input ids), and which config.json keys hold the sizes
that PEFT's prompt-learning methods need. The methods state their side once (methods/: which
write a cache, which feed embeddings); a method is refused where the two meet. Every refusal was
decided by trying the method on a tiny model of that architecture (tests/models/test_families.py
keeps them true), so a combination that cannot work is refused here, before anything is loaded,
instead of failing deep in PEFT.

Any other `model_type` transformers knows is classified lazily from its auto mappings; such rows
refuse nothing, since nobody tried them. This module reads config.json *dicts* and imports neither
torch nor transformers at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.util import find_spec
from types import MappingProxyType

from together_llm.errors import RefusedError, TllmError
from together_llm.methods import METHODS, Method, get_method

FAMILIES = ("encoder", "decoder", "encoder-decoder")
TASKS = ("classify", "embed", "causal-lm", "seq2seq")

# A decoder classifies with a head on its last real token (LLaMA-, GPT-2-...ForSequenceClassification).
FAMILY_TASKS = {
    "encoder": ("classify", "embed"),
    "decoder": ("causal-lm", "classify"),
    "encoder-decoder": ("seq2seq",),
}
PEFT_TASK_TYPES = {
    "classify": "SEQ_CLS",
    "embed": "FEATURE_EXTRACTION",
    "causal-lm": "CAUSAL_LM",
    "seq2seq": "SEQ_2_SEQ_LM",
}

# Where config.json keeps each size, in the order PEFT-style code looks for them; the first
# key present wins. An architecture that names them differently lists its own keys.
WIDTH_KEYS = ("hidden_size", "n_embd", "d_model", "dim")
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers", "encoder_layers")
# An encoder-decoder's prefix goes into its decoder's cache: count the decoder's layers.
DECODER_LAYER_KEYS = ("decoder_layers", "num_decoder_layers") + LAYER_KEYS
HEAD_KEYS = ("num_attention_heads", "n_head", "num_heads", "n_heads", "encoder_attention_heads")


@dataclass(frozen=True)
class Architecture:
    """What the registry knows about one `model_type`."""

    model_type: str
    family: str
    lora_targets: tuple[str, ...] = ()  # () = let PEFT pick, else every linear layer
    # Why its attention takes no past key/value cache ("" = it takes one): refuses the
    # methods that write their virtual tokens into it (Method.writes_cache).
    no_cache: str = ""
    # task -> why the model must see input ids for it: refuses the methods that feed it
    # input embeddings instead (Method.prepends_tokens).
    needs_ids: Mapping[str, str] = field(default_factory=dict, hash=False)
    embedding_keys: tuple[str, ...] = WIDTH_KEYS  # width of the word embeddings (prompt, ptuning)
    verified: bool = True  # False for rows classified from transformers' mappings, never tried
    # Why bf16 autocast (mixed-precision training) breaks this architecture; "" = it works.
    no_autocast: str = ""

    @property
    def tasks(self) -> tuple[str, ...]:
        return FAMILY_TASKS[self.family]

    def refusal(self, method: str, task: str | None = None) -> str | None:
        """Why `method` cannot train this architecture (for `task`), or None if it can."""
        facts = get_method(method)
        if facts.writes_cache and self.no_cache:
            return self.no_cache
        if facts.prepends_tokens and task is not None:
            return self.needs_ids.get(task)
        return None

    def methods(self, task: str | None = None) -> tuple[str, ...]:
        """The methods that work (for `task`), in METHODS order."""
        return tuple(m for m in METHODS if self.refusal(m, task) is None)

    def prompt_fields(self, config: dict, method: Method) -> dict:
        """The sizes a prompt-learning PEFT config needs, read from a config.json dict.

        PEFT guesses them from a handful of key names, which goes wrong for DistilBERT (`dim`,
        `n_layers`, `n_heads`), ALBERT (word embeddings are `embedding_size` wide, not
        `hidden_size`), T5-likes whose heads are `d_kv` wide whatever the width, and
        encoder-decoders with a shallower decoder; spelling them out avoids all four."""
        heads = _first(config, HEAD_KEYS, "number of attention heads")
        seq2seq = self.family == "encoder-decoder"
        if method.writes_cache:
            # Prefix tuning writes keys and values into every layer's cache: heads x head width.
            width = (
                heads * config["d_kv"]
                if config.get("d_kv")
                else _first(config, WIDTH_KEYS, "width")
            )
        else:
            # Prompt and P-tuning prepend word embeddings: the embedding width.
            width = _first(config, self.embedding_keys, "embedding width")
        return {
            "token_dim": width,
            "num_layers": _first(
                config, DECODER_LAYER_KEYS if seq2seq else LAYER_KEYS, "number of layers"
            ),
            "num_attention_heads": heads,
            "num_transformer_submodules": 2 if seq2seq else 1,  # virtual tokens on both sides
        }


def _first(config: dict, keys: tuple[str, ...], what: str) -> int:
    for key in keys:
        if config.get(key) is not None:
            return int(config[key])
    raise TllmError(
        f"config.json of {config.get('model_type', '?')} has no {what} (looked for {', '.join(keys)})"
    )


def _row(
    model_type: str,
    family: str,
    lora: tuple[str, ...],
    needs_ids: dict | None = None,
    **more,
) -> Architecture:
    return Architecture(
        model_type, family, lora, needs_ids=MappingProxyType(dict(needs_ids or {})), **more
    )


# Reasons shared by several rows, worded once.
NO_CACHE = "its attention takes no past key/value cache, which prefix tuning writes into"
FILL_MIN = (
    "its attention masks scores with the fp32 minimum, which a bf16 score cannot "
    "hold (transformers' DeBERTa under autocast)"
)
GLOBAL_FROM_IDS = (
    "its classifier builds the global attention mask from input_ids, and this method "
    "feeds input embeddings instead (it works for embed)"
)

ARCHITECTURES: dict[str, Architecture] = {
    a.model_type: a
    for a in (
        # encoders: classification and embeddings
        _row("bert", "encoder", ("query", "value")),
        _row("roberta", "encoder", ("query", "value")),
        _row("distilbert", "encoder", ("q_lin", "v_lin"), no_cache=NO_CACHE),
        _row(
            "albert",
            "encoder",
            ("query", "value"),
            no_cache=NO_CACHE,
            embedding_keys=("embedding_size",),
        ),
        _row("deberta", "encoder", ("in_proj",), no_cache=NO_CACHE, no_autocast=FILL_MIN),
        _row(
            "deberta-v2",
            "encoder",
            ("query_proj", "value_proj"),
            no_cache=NO_CACHE,
            no_autocast=FILL_MIN,
        ),
        # Global attention (on the CLS token) has its own projections, divided in place:
        # LoRA on them too, so a 4-bit output is never modified in place (QLoRA).
        _row(
            "longformer",
            "encoder",
            ("query", "value", "query_global", "value_global"),
            no_cache=NO_CACHE,
            needs_ids={"classify": GLOBAL_FROM_IDS},
        ),
        # decoders: causal language modelling
        _row("gpt2", "decoder", ("c_attn",)),
        _row("gptj", "decoder", ("q_proj", "v_proj")),
        _row("opt", "decoder", ("q_proj", "v_proj")),
        _row("bloom", "decoder", ("query_key_value",)),
        _row("llama", "decoder", ("q_proj", "v_proj")),
        # encoder-decoders: sequence to sequence
        _row("bart", "encoder-decoder", ("q_proj", "v_proj")),
        _row("t5", "encoder-decoder", ("q", "v")),
        _row("pegasus", "encoder-decoder", ("q_proj", "v_proj")),
    )
}

_CLASSIFIED: dict[str, Architecture] = {}  # rows classified from transformers, once each


def architecture(model_type: str) -> Architecture:
    """The registry row for `model_type`; types outside the table are classified from
    transformers' auto mappings (importing transformers only then)."""
    if model_type in ARCHITECTURES:
        return ARCHITECTURES[model_type]
    if model_type not in _CLASSIFIED:
        _CLASSIFIED[model_type] = _classify(model_type)
    return _CLASSIFIED[model_type]


def _classify(model_type: str) -> Architecture:
    from transformers.models.auto import modeling_auto as auto

    known = ", ".join(ARCHITECTURES)
    if model_type not in auto.CONFIG_MAPPING_NAMES:
        raise TllmError(
            f"unknown model_type {model_type!r}: the registry knows {known} "
            "and any other text model type transformers knows"
        )
    # BERT-likes also register a causal-LM head (for use as a decoder), so a masked-LM head
    # decides "encoder" before a causal-LM head decides "decoder".
    if model_type in auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
        family = "encoder-decoder"
    elif model_type in auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        family = "encoder"
    elif model_type in auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        family = "decoder"
    elif (
        model_type in auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES
        and model_type not in auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
    ):
        family = "encoder"
    else:
        raise TllmError(
            f"model_type {model_type!r} is not a text model this registry can train "
            f"(no language-model or text-classification head); it knows {known}"
        )
    return _row(model_type, family, (), verified=False)


def check_method(model_type: str, method: str | None, task: str | None = None) -> None:
    """Refuse, before any loading, a method or task that cannot work on `model_type`
    (`method` None: the task alone, as for inference)."""
    arch = architecture(model_type)
    if task is not None and task not in arch.tasks:
        raise RefusedError(
            f"{model_type} is {_a(arch.family)} and does not serve {task}; "
            f"tasks it serves: {', '.join(arch.tasks)}"
        )
    if method is None:
        return
    quantizes = get_method(method).quantizes  # refuses an unknown method
    reason = arch.refusal(method, task)
    if reason is None and quantizes and not _has_bitsandbytes():
        reason = "4-bit NF4 quantization needs bitsandbytes (pip install bitsandbytes)"
    if reason is not None:
        works = [
            m for m in arch.methods(task) if not get_method(m).quantizes or _has_bitsandbytes()
        ]
        raise RefusedError(
            f"{method} cannot train {model_type}: {reason}; methods that work: {', '.join(works)}"
        )


def _a(family: str) -> str:
    return ("an " if family[0] in "aeiou" else "a ") + family


def _has_bitsandbytes() -> bool:
    return find_spec("bitsandbytes") is not None


def peft_config(config: dict, method: str, task: str, **user_options):
    """The PEFT config that trains the model of `config` (a config.json dict) with `method` for
    `task`, with the architecture's target modules and sizes filled in; `user_options` (r,
    lora_alpha, num_virtual_tokens...) override the defaults. `full` needs none: None."""
    model_type = config.get("model_type", "")
    check_method(model_type, method, task)
    facts = get_method(method)
    if facts.build is None:
        return None
    arch = architecture(model_type)
    if facts.prompt_learning:
        sizes = arch.prompt_fields(config, facts)
    else:
        sizes = {"target_modules": list(arch.lora_targets) or _default_targets(model_type)}
    return facts.build(PEFT_TASK_TYPES[task], sizes, user_options)


def _default_targets(model_type: str):
    """For a row nobody tried: PEFT's own table, else every linear layer but the output."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as known

    return known.get(model_type) or "all-linear"
