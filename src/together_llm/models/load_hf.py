"""Load a local Hugging Face model directory for one task, after the registry has agreed.

The config.json is read first, with the json module, so that a wrong directory, an unknown
architecture, a task the family does not serve or a method that cannot work is refused in
milliseconds, before torch or transformers is imported and before any weight is read. Loading
is local and safetensors-only: nothing is downloaded and no pickle is ever unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from together_llm.errors import TllmError
from together_llm.methods import get_method
from together_llm.models.families import TASKS, architecture, check_method

AUTO_CLASSES = {
    "classify": "AutoModelForSequenceClassification",
    "embed": "AutoModel",
    "causal-lm": "AutoModelForCausalLM",
    "seq2seq": "AutoModelForSeq2SeqLM",
}

HEADS = ("classifier", "score", "classification_head")  # suffixes: pre_classifier matches too


def read_config(path) -> dict:
    """The config.json of model directory `path`, as a dict."""
    directory = Path(path)
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise TllmError(
            f"{directory} is not a model directory: no config.json "
            "(expected a Hugging Face model folder: config.json, tokenizer files, *.safetensors)"
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TllmError(f"{config_file} is not readable JSON: {error}") from None
    if not isinstance(config, dict) or not config.get("model_type"):
        raise TllmError(f"{config_file} names no model_type")
    return config


def check_weights(path) -> None:
    """Refuse a directory without safetensors weights: other formats can run code when
    unpickled, so they are never loaded."""
    if not any(Path(path).glob("*.safetensors")):
        raise TllmError(
            f"{path} has no *.safetensors weights (other weight formats are "
            "not loaded: they can run code when unpickled)"
        )


def load_hf(
    path,
    task: str | None = None,
    method: str | None = None,
    dtype=None,
    labels: list[str] | None = None,
):
    """Load the model of directory `path` for `task` (default: its family's first task) and its
    tokenizer; return (model, tokenizer), the model in eval mode.

    `method` is checked against the registry first; `qlora` loads the weights quantized to
    4-bit NF4 with bitsandbytes. `dtype` is a torch dtype or its name ("float32", "bfloat16").
    `labels` names the classes of a `classify` head (default: the checkpoint's own)."""
    config = read_config(path)
    model_type = config["model_type"]
    arch = architecture(model_type)
    task = task or arch.tasks[0]
    if task not in TASKS:
        raise TllmError(f"unknown task {task!r}: tasks: {', '.join(TASKS)}")
    check_method(model_type, method, task)  # no method: checks the task
    directory = Path(path)
    check_weights(directory)

    import torch
    import transformers

    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None) or _bad_dtype(dtype)
    options: dict[str, Any] = {"local_files_only": True, "use_safetensors": True}
    if dtype is not None:
        options["dtype"] = dtype
    if method is not None and get_method(method).quantizes:
        options["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype or torch.float32,
            # A classification head is trained whole (PEFT saves it with the adapter), and a
            # 4-bit weight cannot take a gradient: keep heads unquantized.
            llm_int8_skip_modules=list(HEADS) if task == "classify" else None,
        )
    if labels:
        options.update(
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            # a checkpoint's own head of another number of classes is replaced
            ignore_mismatched_sizes=True,
        )
    auto = getattr(transformers, AUTO_CLASSES[task])
    model = auto.from_pretrained(directory, **options)
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        # GPT-2-style tokenizers have no pad token; batching needs one and eos is the custom.
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id  # sequence classification needs it
    model.eval()
    return model, tokenizer


def _bad_dtype(name: str):
    raise TllmError(f"unknown dtype {name!r}: use float32, bfloat16 or float16")


def embed(model, tokenizer, texts: list[str]):
    """Sentence embeddings: the mean of the last hidden states over real (unmasked) tokens,
    a float tensor [len(texts), hidden]. Mean pooling works for any encoder, trained for
    embeddings or not, where the first token alone carries little before fine-tuning."""
    import torch

    batch = tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
    batch = batch.to(model.device)
    with torch.no_grad():
        output = model(**batch, output_hidden_states=True)
    hidden = getattr(output, "last_hidden_state", None)
    if hidden is None:  # a model with a head on top (e.g. classification): take its trunk
        hidden = output.hidden_states[-1]
    mask = batch["attention_mask"]
    hidden = hidden[:, : mask.shape[1]]  # Longformer-style internal padding, if any survived
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
