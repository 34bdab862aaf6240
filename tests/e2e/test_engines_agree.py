"""The bundled model converted to transformers: both engines see the same prompt (same
string, same token ids) and both know the capital of France."""

import json

import pytest

from tests.conftest import run_tllm
from together_llm.engine.choice import open_engine

CONVERSATION = [
    {"role": "system", "content": "You are a geography tutor."},
    {"role": "user", "content": "Which river runs through Paris?"},
    {"role": "assistant", "content": "The Seine."},
    {"role": "user", "content": "And through London? Answer in one word, «please»."},
]


@pytest.fixture(scope="module")
def engines(converted_home):
    config = converted_home.load_config()
    gguf = open_engine(converted_home, config, engine="llama.cpp")
    hf = open_engine(converted_home, config, engine="transformers")
    yield gguf, hf
    gguf.close()


def test_conversion_wrote_a_transformers_model_with_a_fingerprint(converted_home):
    model_dir = converted_home.models_dir / "default"
    assert (model_dir / "model.safetensors").is_file()
    assert not list(model_dir.glob("*.bin"))
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    marker = json.loads((model_dir / "tllm-model.json").read_text())
    info = json.loads(run_tllm("models", "info", "default", "--json", home=converted_home).stdout)
    assert info["fingerprint"] == marker["fingerprint"]


def test_both_engines_render_the_identical_prompt(engines):
    from transformers import AutoTokenizer

    gguf, hf = engines
    prompt = gguf.render(CONVERSATION)
    assert prompt == hf.render(CONVERSATION)
    assert prompt.count("<|im_start|>") == 5 and prompt.endswith("<|im_start|>assistant\n")
    tokenizer = AutoTokenizer.from_pretrained(hf.model.name_or_path)
    assert prompt == tokenizer.apply_chat_template(
        CONVERSATION, tokenize=False, add_generation_prompt=True
    )
    assert gguf.tokenize(prompt) == hf.tokenize(prompt)


def test_the_transformers_engine_also_knows_paris(converted_home):
    result = run_tllm(
        "ask",
        "--engine",
        "transformers",
        "--temperature",
        "0",
        "What is the capital of France?",
        home=converted_home,
    )
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
