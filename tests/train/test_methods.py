"""Every decoder of the family registry x every method it allows, on sft (the decoders' main
stage): the loss falls, and what is saved reloads with plain PEFT (or transformers, for
full) and computes what the trained model computes."""

import json

import pytest

from together_llm.models.families import METHODS, architecture
from together_llm.train.recipe import load_recipe
from together_llm.train.run import train_model
from tests.tiny_models import FAMILY, make_tiny_model

from .conftest import write_dataset

torch = pytest.importorskip("torch")

DECODERS = [t for t, family in FAMILY.items() if family == "decoder"]
CELLS = [(t, m) for t in DECODERS for m in METHODS if architecture(t).refusal(m, "causal-lm") is None]
# Short enough for the tiny models' 64 positions, ChatML markup included.
ROWS = [{"messages": [{"role": "user", "content": f"{animal}?"},
                      {"role": "assistant", "content": sound}]}
        for animal, sound in [("cat", "meow"), ("dog", "woof"), ("cow", "moo"), ("owl", "hoot")]]
# Prompt-learning methods learn slowly from a random model; they get a higher rate.
LR = {"full": 3e-3, "prefix": 3e-2, "ptuning": 3e-2, "prompt": 3e-2}


@pytest.fixture(scope="module")
def decoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("decoders")
    return {t: make_tiny_model(t, root / t) for t in DECODERS}


@pytest.mark.parametrize("model_type,method", CELLS, ids=[f"{t}-{m}" for t, m in CELLS])
def test_each_decoder_and_method_trains_and_reloads(model_type, method, decoders, home):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from together_llm.models.load_hf import load_hf
    from together_llm.models.registry import add_model

    add_model(home, "tiny", str(decoders[model_type]))
    write_dataset(home, "short", "chat", ROWS)
    lora_head = {"target_modules": ",".join(architecture(model_type).lora_targets + ("lm_head",))}
    metrics, trained = train_model(home, load_recipe(None, {
        "data": "short", "name": "out", "base": "tiny", "method": method, "max_steps": 15,
        "logging_every": 5, "batch_size": 2, "lr": LR.get(method, 1e-2), "scheduler": "constant",
        "num_virtual_tokens": 2, **(lora_head if method in ("lora", "qlora") else {})}))
    log = [json.loads(line) for line in
           (home.path / "runs" / metrics["run_id"] / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"], log

    inputs = {"input_ids": torch.tensor([[1, 40, 41, 42, 43, 44, 45]])}
    trained.eval()
    with torch.no_grad():
        expected = trained(**inputs).logits
        if method == "full":
            reloaded = AutoModelForCausalLM.from_pretrained(home.models_dir / "out")
        else:
            base, _ = load_hf(decoders[model_type], "causal-lm", method, dtype="float32")
            reloaded = PeftModel.from_pretrained(base, home.adapters_dir / "out")
        assert torch.allclose(reloaded.eval()(**inputs).logits, expected, atol=1e-4)
