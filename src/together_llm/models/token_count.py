"""Counting a text's tokens with a registered model's tokenizer, without loading weights.

A GGUF model is opened vocabulary-only through llama.cpp (a fraction of a second); an HF
directory through transformers' AutoTokenizer. Special tokens (BOS, EOS) are not counted:
the count is of the text itself, as a length filter wants.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

from ..errors import TllmError
from .registry import get_model


def token_counter(home, model_name: str | None = None) -> Callable[[str], int]:
    """A function giving the number of tokens of a text for model `model_name` (default:
    the home's model, assistant.yaml's `model`)."""

    entry = get_model(home, model_name or home.load_config().model)
    if entry.gguf_path is not None:
        from llama_cpp import Llama

        # Even with verbose=False llama.cpp warns that a vocabulary-only model has no
        # training context; that line means nothing to someone counting tokens.
        with contextlib.redirect_stderr(io.StringIO()):
            vocab = Llama(model_path=str(entry.gguf_path), vocab_only=True, verbose=False)
        return lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))
    if entry.hf_dir is not None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(entry.hf_dir, local_files_only=True)
        tokenizer.model_max_length = 1 << 62  # counting only: no "longer than the model" warning
        return lambda text: len(tokenizer.encode(text, add_special_tokens=False))
    raise TllmError(
        f"model {entry.name!r} ({entry.kind}) has no local tokenizer to count tokens "
        "with: pick a local model (for clean: --tokenizer)"
    )
