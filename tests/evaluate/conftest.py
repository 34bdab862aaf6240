"""The tiny random LLaMA, loaded once for the evaluation tests, on one thread; and a home on
it (`eval_home`) with an adapter and small datasets of every kind eval measures."""

from __future__ import annotations

import json

import pytest

from tests.tiny_models import make_long_llama, make_tiny_model, one_torch_thread
from tests.train.conftest import write_dataset
from together_llm.data.kinds import validate
from together_llm.home import Home


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """(model, tokenizer) of the tiny LLaMA of tests/tiny_models.py, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = make_tiny_model("llama", tmp_path_factory.mktemp("tiny") / "llama")
    return AutoModelForCausalLM.from_pretrained(directory).eval(), AutoTokenizer.from_pretrained(
        directory
    )


ANIMALS = [("cat", "meow"), ("dog", "woof"), ("cow", "moo"), ("duck", "quack"), ("owl", "hoot")]


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return make_long_llama(tmp_path_factory.mktemp("tiny") / "llama")


@pytest.fixture
def eval_home(tmp_path, tiny_dir) -> Home:
    """A home on `tiny` with an adapter `noisy` and datasets notes (text), sounds (chat) and
    quiz (choice)."""
    import peft
    from transformers import AutoModelForCausalLM

    from together_llm.models.fingerprint import fingerprint
    from together_llm.models.registry import add_model

    home = Home.open(tmp_path / "home")
    add_model(home, "tiny", str(tiny_dir))
    config = home.load_config()
    config.model = "tiny"
    home.save_config(config)
    rows = {
        "notes": ("text", [{"text": f"The {a} says {s}. " * 3} for a, s in ANIMALS]),
        "sounds": (
            "chat",
            [
                {
                    "messages": [
                        {"role": "user", "content": f"What does the {a} say?"},
                        {"role": "assistant", "content": f"The {a} says {s}."},
                    ]
                }
                for a, s in ANIMALS
            ],
        ),
        "quiz": (
            "choice",
            [
                {
                    "question": f"The {a} says",
                    "choices": [s, "purr", "bark"],
                    "answer": i % 3 if i % 2 else s,
                }
                for i, (a, s) in enumerate(ANIMALS)
            ],
        ),
    }
    for name, (kind, found) in rows.items():  # canonical rows, as an import writes them
        write_dataset(home, name, kind, [validate(kind, row) for row in found])

    import torch

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    lora = peft.LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj", "lm_head"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    folder = home.adapters_dir / "noisy"
    peft.get_peft_model(model, lora).save_pretrained(
        folder, safe_serialization=True, save_embedding_layers=False
    )
    (folder / "README.md").unlink(missing_ok=True)
    (folder / "card.json").write_text(
        json.dumps(
            {
                "name": "noisy",
                "base": "tiny",
                "base_fingerprint": fingerprint(tiny_dir),
                "stage": "sft",
                "method": "lora",
            }
        )
    )
    return home
