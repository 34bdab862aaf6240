"""`tllm export` on tiny models: refusals before any slow work, the merged model, and the
Modelfile. The end-to-end GGUF export of the bundled model is in test_export_e2e.py."""

from __future__ import annotations

import json

import pytest
import torch

from tests.tiny_models import make_tiny_model
from together_llm.errors import RefusedError, TllmError
from together_llm.export.exporter import export
from together_llm.home import Home


def needs_converter():
    from together_llm.models.llamacpp_scripts import converter_dir

    if not (converter_dir() / "convert_hf_to_gguf.py").is_file():
        pytest.skip("llama.cpp's converter is not fetched (scripts/fetch-converter)")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A tiny LLaMA, a second LLaMA of another shape (another base), and a tiny OPT,
    whose architecture llama.cpp's converter does not handle."""
    root = tmp_path_factory.mktemp("export-models")
    llama = make_tiny_model("llama", root / "llama")
    other = make_tiny_model("llama", root / "other")
    config = json.loads((other / "config.json").read_text())
    config["num_hidden_layers"] = 3  # another base: its fingerprint differs
    (other / "config.json").write_text(json.dumps(config))
    return {"llama": llama, "other": other, "opt": make_tiny_model("opt", root / "opt")}


@pytest.fixture
def tiny_home(tmp_path, tiny_models) -> Home:
    """A home using the tiny LLaMA, with LoRA adapter `sounds` trained on it (random LoRA
    weights, B made non-zero so merging changes the model) and its card."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from together_llm.models.fingerprint import fingerprint
    from together_llm.models.registry import add_model

    home = Home.open(tmp_path / "home")
    for name, path in tiny_models.items():
        add_model(home, name, str(path))
    config = home.load_config()
    config.model = "llama"
    home.save_config(config)
    model = AutoModelForCausalLM.from_pretrained(tiny_models["llama"])
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)
    folder = home.adapters_dir / "sounds"
    peft_model.save_pretrained(folder, safe_serialization=True)
    card = {
        "name": "sounds",
        "base": "llama",
        "base_fingerprint": fingerprint(tiny_models["llama"]),
        "stage": "sft",
        "method": "lora",
    }
    (folder / "card.json").write_text(json.dumps(card))
    return home


def test_unknown_gguf_type_is_refused_listing_the_known_ones(home):
    with pytest.raises(TllmError, match="unknown GGUF type 'q3_z'; known types: f16, q8_0, q4_k_m"):
        export(home, "x", gguf=["q8_0", "q3_z"])
    assert not (home.path / "exports" / "x").exists()


def test_adapter_trained_on_another_base_is_refused(tiny_home):
    with pytest.raises(TllmError, match="trained on a different base .* than 'other'"):
        export(tiny_home, "wrong", adapter="sounds", model="other", merge=True)
    assert list((tiny_home.path / "exports").iterdir()) == []  # nothing half-written


def test_architecture_the_converter_cannot_handle_is_refused(tiny_home):
    needs_converter()
    with pytest.raises(RefusedError) as refused:
        export(tiny_home, "opt", model="opt", gguf=["q8_0"])
    message = str(refused.value)
    assert "cannot turn OPTForCausalLM into GGUF" in message
    assert "LlamaForCausalLM" in message and "Qwen2ForCausalLM" in message  # what it supports
    assert list((tiny_home.path / "exports").iterdir()) == []


def test_nothing_to_do_and_taken_names_are_refused(tiny_home):
    with pytest.raises(TllmError, match="nothing to export"):
        export(tiny_home, "x", adapter="sounds")
    with pytest.raises(TllmError, match="--gguf-adapter needs --adapter"):
        export(tiny_home, "x", gguf_adapter=True)
    (tiny_home.path / "exports" / "taken").mkdir()
    with pytest.raises(TllmError, match="already exists.*--overwrite"):
        export(tiny_home, "taken", merge=True)


def test_merge_folds_the_adapter_into_a_plain_model_with_the_chat_template(tiny_home, tiny_models):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from together_llm.models.chat_template import DEFAULT_TEMPLATE

    result = export(tiny_home, "merged", adapter="sounds", merge=True, report=lambda m: None)
    merged_dir = result.folder / "hf"
    assert not (merged_dir / "adapter_config.json").exists()
    ids = torch.tensor([[1, 40, 41, 42, 43]])
    base = AutoModelForCausalLM.from_pretrained(tiny_models["llama"])
    with torch.no_grad():
        plain = base(ids).logits
        with_adapter = PeftModel.from_pretrained(base, tiny_home.adapters_dir / "sounds")(
            ids
        ).logits
        merged = AutoModelForCausalLM.from_pretrained(merged_dir)(ids).logits
    assert not torch.allclose(plain, with_adapter, atol=1e-3)  # the adapter matters
    assert torch.allclose(merged, with_adapter, atol=1e-4)  # and the merge keeps it exactly
    # The tiny model has no template of its own: training rendered ChatML, and so will users.
    assert AutoTokenizer.from_pretrained(merged_dir).chat_template == DEFAULT_TEMPLATE
    assert (
        json.loads((merged_dir / "tokenizer_config.json").read_text())["chat_template"]
        == DEFAULT_TEMPLATE
    )
    record = json.loads((result.folder / "export.json").read_text())
    assert record["adapter"] == "sounds" and record["base"] == "llama"
    assert not (result.folder / "Modelfile").exists()  # no GGUF, nothing for Ollama to run


def test_modelfile_runs_the_gguf_with_the_assistants_template_and_settings(tmp_path):
    from together_llm.export.modelfile import write_modelfile
    from together_llm.models.chat_template import DEFAULT_TEMPLATE

    path = write_modelfile(
        tmp_path,
        "facts",
        "facts-q8_0.gguf",
        DEFAULT_TEMPLATE,
        system_prompt="You are a helpful assistant.",
        generation={"temperature": 0.7, "max_tokens": 512},
        adapter_file="facts-lora-f16.gguf",
    )
    text = path.read_text()
    assert "FROM ./facts-q8_0.gguf\n" in text
    assert "ADAPTER ./facts-lora-f16.gguf\n" in text
    assert "<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>" in text  # ChatML as a Go template
    assert 'SYSTEM """You are a helpful assistant."""' in text
    assert 'PARAMETER stop """<|im_end|>"""' in text
    assert "PARAMETER temperature 0.7" in text and "PARAMETER num_predict 512" in text
    other = write_modelfile(tmp_path, "x", "/abs/x.gguf", "{{ messages }}")
    assert "FROM /abs/x.gguf" in other.read_text() and "TEMPLATE" not in other.read_text().replace(
        "# TEMPLATE", ""
    )


def test_llama_cpp_engine_refuses_a_file_that_is_not_a_lora_adapter():
    from together_llm.engine.llamacpp.engine import LlamaCppEngine
    from together_llm.models.gguf_file import bundled_gguf

    # llama.cpp itself would load a model file as an "adapter" that changes nothing.
    with pytest.raises(TllmError, match="is not a GGUF LoRA adapter for a llama model"):
        LlamaCppEngine(bundled_gguf(), lora_path=bundled_gguf())


@pytest.fixture(scope="module")
def tiny_smol(tmp_path_factory):
    """A tiny random LLaMA with the bundled SmolLM2's tokenizer and chat template: llama.cpp's
    converter recognises that tokenizer (not the test BPE of tiny_models), so the whole GGUF
    path runs in seconds."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from together_llm.models.gguf_file import bundled_gguf

    needs_converter()
    gguf = bundled_gguf()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    directory = tmp_path_factory.mktemp("smol") / "smol"
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_gguf_export_carries_the_chat_template_and_runs_on_llama_cpp(tmp_path, tiny_smol):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from together_llm.engine.llamacpp.engine import LlamaCppEngine
    from together_llm.models.fingerprint import fingerprint
    from together_llm.models.registry import add_model
    from together_llm.models.to_gguf import read_metadata

    home = Home.open(tmp_path / "home")
    add_model(home, "smol", str(tiny_smol))
    lora = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_smol),
        LoraConfig(r=4, target_modules=["q_proj", "v_proj"]),
    )
    lora.save_pretrained(home.adapters_dir / "a")
    (home.adapters_dir / "a" / "card.json").write_text(
        json.dumps({"base": "smol", "base_fingerprint": fingerprint(tiny_smol)})
    )

    result = export(
        home, "t", adapter="a", gguf=["q8_0", "Q4_K_M"], gguf_adapter=True, report=lambda m: None
    )
    assert {path.name for path in result.folder.iterdir()} == {
        "hf",
        "t-q8_0.gguf",
        "t-q4_k_m.gguf",
        "t-lora-f16.gguf",
        "Modelfile",
        "export.json",
    }
    template = AutoTokenizer.from_pretrained(tiny_smol).chat_template
    assert "<|im_start|>" in template
    for kind in ("q8_0", "q4_k_m"):
        meta = read_metadata(
            result.folder / f"t-{kind}.gguf", "tokenizer.chat_template", "general.file_type"
        )
        assert meta["tokenizer.chat_template"] == template
        assert meta["general.file_type"] == {"q8_0": 7, "q4_k_m": 15}[kind]  # llama_ftype
    assert (
        read_metadata(result.folder / "t-lora-f16.gguf", "adapter.type")["adapter.type"] == "lora"
    )
    modelfile = (result.folder / "Modelfile").read_text()
    # Ollama runs the merged file; the adapter is in it, so it must not be applied again.
    assert "FROM ./t-q8_0.gguf" in modelfile and "ADAPTER" not in modelfile

    engine = LlamaCppEngine(result.folder / "t-q8_0.gguf", context_length=256)
    try:
        messages = [{"role": "user", "content": "Hello there"}]
        assert engine.chat_template == template
        hf_ids = AutoTokenizer.from_pretrained(result.folder / "hf").apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        assert engine.tokenize(engine.render(messages)) == list(hf_ids)  # same prompt, same ids
    finally:
        engine.close()
