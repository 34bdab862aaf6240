"""A home with a tiny random LLaMA registered as `tiny`, and helpers that write datasets.

The learnable task: six animals and the sound each makes, asked one way and answered one
way, so a few dozen steps visibly lower the loss on the answers."""

from __future__ import annotations

import pytest
import torch

from tests.tiny_models import make_long_llama, one_torch_thread
from together_llm.data.store import DatasetWriter
from together_llm.home import Home

ANIMALS = [
    ("cat", "meow"),
    ("dog", "woof"),
    ("cow", "moo"),
    ("duck", "quack"),
    ("owl", "hoot"),
    ("sheep", "baa"),
    ("frog", "ribbit"),
    ("bee", "buzz"),
]

# A random model's lm_head is tiny (std 0.02): with it frozen, no adapter of the attention
# alone can make the logits confident. LoRA on lm_head as well lets the tiny model learn.
LEARNABLE = {"target_modules": "q_proj,v_proj,lm_head", "lr": 1e-2, "scheduler": "constant"}


def chat_rows(pairs=ANIMALS) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"What does the {animal} say?"},
                {"role": "assistant", "content": f"The {animal} says {sound}."},
            ]
        }
        for animal, sound in pairs
    ]


def text_rows() -> list[dict]:
    return [{"text": f"The {animal} says {sound}. " * 3} for animal, sound in ANIMALS]


def write_dataset(home, name: str, kind: str, rows: list[dict]) -> None:
    with DatasetWriter(home, name, kind, source="test", format=kind) as out:
        for row in rows:
            out.add(row)
        out.commit()


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    return make_long_llama(tmp_path_factory.mktemp("tiny") / "llama")


@pytest.fixture
def tiny_home(tmp_path, tiny_llama) -> Home:
    """A home whose assistant uses the tiny LLaMA, with a `sounds` chat dataset and a
    `notes` text dataset."""
    from together_llm.models.registry import add_model

    home = Home.open(tmp_path / "home")
    add_model(home, "tiny", str(tiny_llama))
    config = home.load_config()
    config.model = "tiny"
    home.save_config(config)
    write_dataset(home, "sounds", "chat", chat_rows())
    write_dataset(home, "notes", "text", text_rows())
    return home


def saved_adapter(home, name: str) -> dict:
    """An adapter's saved tensors, by name."""
    from safetensors.torch import load_file

    return load_file(home.adapters_dir / name / "adapter_model.safetensors")


def assert_same_adapters(home, a: str, b: str, atol: float) -> dict:
    """Adapters `a` and `b` hold the same tensors within `atol`; returns a's tensors."""

    first, second = saved_adapter(home, a), saved_adapter(home, b)
    assert first.keys() == second.keys()
    for key in first:
        assert torch.allclose(first[key], second[key], atol=atol), key
    return first
