"""The issue's matrix: every architecture of the family registry x every method the registry
allows for it x the family's main stage (decoders: sft on chat, encoders: classify,
encoder-decoders: seq2seq), on tiny random models: the loss on a small learnable task
falls, and what is saved reloads with plain PEFT (or transformers, for full) and computes
what the trained model computes."""

import json

import pytest
import torch

from tests.tiny_models import FAMILY, make_tiny_model
from together_llm.methods import METHODS
from together_llm.models.families import architecture
from together_llm.train.recipe import load_recipe
from together_llm.train.run import train_model

from .conftest import write_dataset

# family -> (stage, its task, dataset kind)
MAIN_STAGE = {
    "decoder": ("sft", "causal-lm", "chat"),
    "encoder": ("classify", "classify", "classification"),
    "encoder-decoder": ("seq2seq", "seq2seq", "seq2seq"),
}
CELLS = [
    (t, m)
    for t, family in FAMILY.items()
    for m in METHODS
    if architecture(t).refusal(m, MAIN_STAGE[family][1]) is None
]

SOUNDS = [("cat", "meow"), ("dog", "woof"), ("cow", "moo"), ("owl", "hoot")]
# Short enough for the tiny models' 64 positions, ChatML markup included.
ROWS = {
    "chat": [
        {
            "messages": [
                {"role": "user", "content": f"{animal}?"},
                {"role": "assistant", "content": sound},
            ]
        }
        for animal, sound in SOUNDS
    ],
    "seq2seq": [{"source": f"{animal}?", "target": sound} for animal, sound in SOUNDS],
    # Two classes, told apart by a word the tiny tokenizer knows.
    "classification": [
        {"text": f"the {animal} sat on the mat", "label": label}
        for animal, label in [
            ("cat", "pet"),
            ("dog", "pet"),
            ("cow", "farm"),
            ("owl", "wild"),
            ("bird", "wild"),
            ("moon", "farm"),
        ]
    ],
}
# Prompt-learning methods learn slowly from a random model; they get a higher rate.
LR = {"full": 3e-3, "prefix": 3e-2, "ptuning": 3e-2, "prompt": 3e-2}
INPUTS = {"input_ids": torch.tensor([[1, 40, 41, 42, 43, 44, 45]])}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("archs")
    return {t: make_tiny_model(t, root / t) for t in FAMILY}


def lora_targets(model_type: str, task: str) -> dict:
    """A random model's output layer is tiny (std 0.02): LoRA on a decoder's lm_head too
    lets the tiny model learn; classifier heads are trained whole by PEFT anyway."""
    if task != "causal-lm":
        return {}
    return {"target_modules": ",".join(architecture(model_type).lora_targets + ("lm_head",))}


def reload(directory, method: str, task: str, labels, adapter_dir, model_dir):
    from peft import PeftModel

    from together_llm.models.load_hf import AUTO_CLASSES, load_hf
    from together_llm.models.peft_cache import fit_cache_name

    if method == "full":
        import transformers

        return getattr(transformers, AUTO_CLASSES[task]).from_pretrained(model_dir)
    base, _ = load_hf(directory, task, method, dtype="float32", labels=labels)
    # As the project loads adapters: PEFT's own classifier prefix tuning cannot find the cache
    # argument transformers 5.24 renamed (models/peft_cache.py).
    return fit_cache_name(PeftModel.from_pretrained(base, adapter_dir))


@pytest.mark.parametrize("model_type,method", CELLS, ids=[f"{t}-{m}" for t, m in CELLS])
def test_each_architecture_and_method_trains_and_reloads(model_type, method, tiny_models, home):
    from together_llm.models.registry import add_model

    stage, task, kind = MAIN_STAGE[FAMILY[model_type]]
    add_model(home, "tiny", str(tiny_models[model_type]))
    write_dataset(home, "small", kind, ROWS[kind])
    metrics, trained = train_model(
        home,
        load_recipe(
            None,
            {
                "data": "small",
                "name": "out",
                "base": "tiny",
                "stage": stage,
                "method": method,
                "max_steps": 15,
                "logging_every": 5,
                "batch_size": 2,
                "lr": LR.get(method, 1e-2),
                "scheduler": "constant",
                "num_virtual_tokens": 2,
                "auto": False,  # the matrix tests each method on its own settings
                **(lora_targets(model_type, task) if method in ("lora", "qlora") else {}),
            },
        ),
    )
    log = [
        json.loads(line)
        for line in (home.path / "runs" / metrics["run_id"] / "log.jsonl").read_text().splitlines()
    ]
    assert log[-1]["loss"] < log[0]["loss"], log

    labels = metrics.get("labels")
    inputs = dict(INPUTS)
    if task == "seq2seq":
        inputs["decoder_input_ids"] = torch.tensor([[0, 40, 41]])
    trained.eval()
    with torch.no_grad():
        expected = trained(**inputs).logits
        reloaded = reload(
            tiny_models[model_type],
            method,
            task,
            labels,
            home.adapters_dir / "out",
            home.models_dir / "out",
        )
        assert torch.allclose(reloaded.eval()(**inputs).logits, expected, atol=1e-4)
    if labels:  # the classes are recorded where a user finds them
        card = json.loads(
            (
                (home.models_dir if method == "full" else home.adapters_dir) / "out" / "card.json"
            ).read_text()
        )
        assert card["labels"] == labels == ["farm", "pet", "wild"]
