"""Token counts from a registered model's tokenizer, with no weights loaded."""

from __future__ import annotations

import pytest

from together_llm.errors import TllmError
from together_llm.models.token_count import token_counter


def test_the_home_models_gguf_vocabulary_counts_tokens(home):
    from llama_cpp import Llama

    from together_llm.models.registry import get_model

    count = token_counter(home)  # the home's model: the bundled GGUF
    vocab = Llama(
        model_path=str(get_model(home, "default").gguf_path), vocab_only=True, verbose=False
    )
    for text in ("Hello there.", "Un café, s’il vous plaît.", "def f(x):\n    return x * 2\n"):
        assert count(text) == len(vocab.tokenize(text.encode(), add_bos=False, special=False)) > 0
    assert count("word " * 50) > count("word " * 5)
    assert count("") == 0  # no BOS: only the text's own tokens


@pytest.mark.slow  # builds a tiny model and imports transformers
def test_an_hf_directory_counts_with_its_own_tokenizer(home, tmp_path):
    from transformers import AutoTokenizer

    from tests.tiny_models import make_tiny_model
    from together_llm.models.registry import add_model

    add_model(home, "tiny", str(make_tiny_model("gpt2", tmp_path / "tiny")))
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tiny")
    text = "The cat sat on the mat and looked at the moon."
    assert token_counter(home, "tiny")(text) == len(
        tokenizer.encode(text, add_special_tokens=False)
    )


def test_an_unknown_model_is_named(home):
    with pytest.raises(TllmError, match="unknown model 'nope'"):
        token_counter(home, "nope")
