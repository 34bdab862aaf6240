"""The tiny random LLaMA, loaded once for the evaluation tests, on one thread."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread on this shared two-core machine."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """(model, tokenizer) of the tiny LLaMA of tests/tiny_models.py, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.tiny_models import make_tiny_model

    directory = make_tiny_model("llama", tmp_path_factory.mktemp("tiny") / "llama")
    return AutoModelForCausalLM.from_pretrained(directory).eval(), AutoTokenizer.from_pretrained(directory)
