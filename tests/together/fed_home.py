"""The federation tests' home: the tiny LLaMA as its assistant's model and `sounds`, a chat
dataset of 24 rows (the train tests' animals, three times) to divide among peers."""

from __future__ import annotations

import pytest

from tests.train.conftest import ANIMALS, LEARNABLE, chat_rows, write_dataset
from together_llm.home import Home

# A round's recipe the tiny model learns from in a few steps (LoRA on lm_head too, a high
# constant learning rate: tests/train/conftest.py says why).
FAST = {
    "local_steps": 3,
    "lr": LEARNABLE["lr"],
    "batch_size": 2,
    "max_length": 128,
    "target_modules": LEARNABLE["target_modules"],
}


@pytest.fixture
def fed_home(tmp_path, tiny_llama) -> Home:
    from together_llm.models.registry import add_model

    home = Home.open(tmp_path / "home")
    add_model(home, "tiny", str(tiny_llama))
    config = home.load_config()
    config.model = "tiny"
    home.save_config(config)
    write_dataset(home, "sounds", "chat", chat_rows(ANIMALS * 3))
    return home
