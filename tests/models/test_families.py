"""The family registry against real (tiny, random) models of every architecture it names.

Each architecture is built from a config at test time (tests/tiny_models.py), loaded through
`load_hf`, run on its family's task, saved and reloaded; every (architecture, method) cell of
the refusal table is asserted, and every cell that works is trained one step with PEFT.
"""

import json
import math
import subprocess
import sys
from importlib.util import find_spec

import pytest
import torch

from tests.tiny_models import FAMILY, make_tiny_model, one_torch_thread
from together_llm.errors import RefusedError, TllmError
from together_llm.methods import METHODS
from together_llm.models.families import architecture, check_method, peft_config
from together_llm.models.load_hf import embed, load_hf
from together_llm.models.peft_cache import fit_cache_name

ARCHITECTURES = tuple(FAMILY)  # the fourteen of the issue, and DeBERTa (v1), which works too
HAS_BNB = find_spec("bitsandbytes") is not None

# What the registry says for each architecture x method, on the family's default task
# (classify for encoders): None where the method works, else the exact refusal.
NO_CACHE = "its attention takes no past key/value cache, which prefix tuning writes into"
LONGFORMER = (
    "its classifier builds the global attention mask from input_ids, and this method "
    "feeds input embeddings instead (it works for embed)"
)
ok = None
REFUSALS = {
    ("bert", "full"): ok,
    ("bert", "lora"): ok,
    ("bert", "qlora"): ok,
    ("bert", "prefix"): ok,
    ("bert", "ptuning"): ok,
    ("bert", "prompt"): ok,
    ("roberta", "full"): ok,
    ("roberta", "lora"): ok,
    ("roberta", "qlora"): ok,
    ("roberta", "prefix"): ok,
    ("roberta", "ptuning"): ok,
    ("roberta", "prompt"): ok,
    ("distilbert", "full"): ok,
    ("distilbert", "lora"): ok,
    ("distilbert", "qlora"): ok,
    ("distilbert", "prefix"): f"prefix cannot train distilbert: {NO_CACHE}; "
    "methods that work: full, lora, qlora, ptuning, prompt",
    ("distilbert", "ptuning"): ok,
    ("distilbert", "prompt"): ok,
    ("albert", "full"): ok,
    ("albert", "lora"): ok,
    ("albert", "qlora"): ok,
    ("albert", "prefix"): f"prefix cannot train albert: {NO_CACHE}; "
    "methods that work: full, lora, qlora, ptuning, prompt",
    ("albert", "ptuning"): ok,
    ("albert", "prompt"): ok,
    ("deberta", "full"): ok,
    ("deberta", "lora"): ok,
    ("deberta", "qlora"): ok,
    ("deberta", "prefix"): f"prefix cannot train deberta: {NO_CACHE}; "
    "methods that work: full, lora, qlora, ptuning, prompt",
    ("deberta", "ptuning"): ok,
    ("deberta", "prompt"): ok,
    ("deberta-v2", "full"): ok,
    ("deberta-v2", "lora"): ok,
    ("deberta-v2", "qlora"): ok,
    ("deberta-v2", "prefix"): f"prefix cannot train deberta-v2: {NO_CACHE}; "
    "methods that work: full, lora, qlora, ptuning, prompt",
    ("deberta-v2", "ptuning"): ok,
    ("deberta-v2", "prompt"): ok,
    ("longformer", "full"): ok,
    ("longformer", "lora"): ok,
    ("longformer", "qlora"): ok,
    ("longformer", "prefix"): f"prefix cannot train longformer: {NO_CACHE}; "
    "methods that work: full, lora, qlora",
    ("longformer", "ptuning"): f"ptuning cannot train longformer: {LONGFORMER}; "
    "methods that work: full, lora, qlora",
    ("longformer", "prompt"): f"prompt cannot train longformer: {LONGFORMER}; "
    "methods that work: full, lora, qlora",
    ("gpt2", "full"): ok,
    ("gpt2", "lora"): ok,
    ("gpt2", "qlora"): ok,
    ("gpt2", "prefix"): ok,
    ("gpt2", "ptuning"): ok,
    ("gpt2", "prompt"): ok,
    ("gptj", "full"): ok,
    ("gptj", "lora"): ok,
    ("gptj", "qlora"): ok,
    ("gptj", "prefix"): ok,
    ("gptj", "ptuning"): ok,
    ("gptj", "prompt"): ok,
    ("opt", "full"): ok,
    ("opt", "lora"): ok,
    ("opt", "qlora"): ok,
    ("opt", "prefix"): ok,
    ("opt", "ptuning"): ok,
    ("opt", "prompt"): ok,
    ("bloom", "full"): ok,
    ("bloom", "lora"): ok,
    ("bloom", "qlora"): ok,
    ("bloom", "prefix"): ok,
    ("bloom", "ptuning"): ok,
    ("bloom", "prompt"): ok,
    ("llama", "full"): ok,
    ("llama", "lora"): ok,
    ("llama", "qlora"): ok,
    ("llama", "prefix"): ok,
    ("llama", "ptuning"): ok,
    ("llama", "prompt"): ok,
    ("bart", "full"): ok,
    ("bart", "lora"): ok,
    ("bart", "qlora"): ok,
    ("bart", "prefix"): ok,
    ("bart", "ptuning"): ok,
    ("bart", "prompt"): ok,
    ("t5", "full"): ok,
    ("t5", "lora"): ok,
    ("t5", "qlora"): ok,
    ("t5", "prefix"): ok,
    ("t5", "ptuning"): ok,
    ("t5", "prompt"): ok,
    ("pegasus", "full"): ok,
    ("pegasus", "lora"): ok,
    ("pegasus", "qlora"): ok,
    ("pegasus", "prefix"): ok,
    ("pegasus", "ptuning"): ok,
    ("pegasus", "prompt"): ok,
}
WORKING = [cell for cell, refusal in REFUSALS.items() if refusal is None]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """`tiny(model_type, task=None)` -> the directory of that tiny model, built once a module."""
    root = tmp_path_factory.mktemp("tiny")
    built = {}

    def build(model_type, task=None):
        key = (model_type, task)
        if key not in built:
            built[key] = make_tiny_model(model_type, root / f"{model_type}-{task}", task)
        return built[key]

    return build


def batch(tokenizer, family):
    """Two texts of different lengths (so padding is exercised), with labels for the family."""
    inputs = tokenizer(
        ["the cat sat on the mat", "two plus two"], padding=True, return_tensors="pt"
    )
    if family == "encoder":
        inputs["labels"] = torch.tensor([0, 1])
    elif family == "decoder":
        inputs["labels"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    else:
        target = tokenizer(["le chat", "four"], padding=True, return_tensors="pt")
        inputs["labels"] = target["input_ids"].masked_fill(target["attention_mask"] == 0, -100)
    return inputs


def generate(model, inputs):
    prompt = {k: v for k, v in inputs.items() if k != "labels"}
    with torch.no_grad():
        return model.generate(**prompt, do_sample=False, min_new_tokens=5, max_new_tokens=5)


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_family_task_and_save_reload(model_type, tiny, tmp_path):
    family = architecture(model_type).family
    model, tokenizer = load_hf(tiny(model_type))
    inputs = batch(tokenizer, family)
    with torch.no_grad():
        output = model(**inputs)
    assert math.isfinite(output.loss.item())

    if family == "encoder":
        assert output.logits.shape == (2, 2)  # two texts, two labels
        embedder, tokenizer_e = load_hf(tiny(model_type, "embed"), task="embed")
        vectors = embed(embedder, tokenizer_e, ["a cat", "a much longer sentence about dogs"])
        config = json.loads((tiny(model_type) / "config.json").read_text())
        width = config.get("hidden_size") or config["dim"]  # DistilBERT says dim
        assert vectors.shape == (2, width) and torch.isfinite(vectors).all()
    else:
        ids = generate(model, inputs)
        start = inputs["input_ids"].shape[1] if family == "decoder" else 1  # decoder start token
        assert ids.shape == (2, start + 5)

    model.save_pretrained(tmp_path / "copy")
    tokenizer.save_pretrained(tmp_path / "copy")
    again, _ = load_hf(tmp_path / "copy")
    with torch.no_grad():
        assert torch.equal(again(**inputs).logits, output.logits)


def test_the_refusal_table_is_the_registry():
    assert {mt for mt, _ in REFUSALS} == set(ARCHITECTURES) and len(REFUSALS) == len(
        ARCHITECTURES
    ) * len(METHODS)
    for (model_type, method), expected in REFUSALS.items():
        task = architecture(model_type).tasks[0]
        if method == "qlora" and not HAS_BNB:
            expected = "needs bitsandbytes"
        try:
            check_method(model_type, method, task)
        except RefusedError as error:
            assert expected is not None, f"{model_type} x {method} refused: {error}"
            assert expected in str(error)
        else:
            assert expected is None, f"{model_type} x {method} should be refused"


def test_longformer_prompt_methods_work_for_embeddings():
    for method in ("ptuning", "prompt"):
        check_method("longformer", method, "embed")
        check_method("longformer", method)  # no task: some task works


@pytest.mark.parametrize("model_type,method", WORKING, ids=[f"{m}-{x}" for m, x in WORKING])
def test_each_working_cell_trains(model_type, method, tiny):
    """A PEFT step on every cell the table says works: finite loss, and a gradient on every
    trainable parameter (a prefix or prompt the model silently ignored would have none)."""
    if method == "qlora" and not HAS_BNB:
        pytest.skip("bitsandbytes is not installed")
    import peft

    family = architecture(model_type).family
    task = architecture(model_type).tasks[0]
    directory = tiny(model_type)
    model, tokenizer = load_hf(directory, task, method)
    config = json.loads((directory / "config.json").read_text())
    adapter = peft_config(config, method, task)
    if method == "full":
        assert adapter is None  # every weight trains: no PEFT config
    else:
        model = fit_cache_name(peft.get_peft_model(model, adapter))
    model.train()
    inputs = batch(tokenizer, family)
    loss = model(**inputs).loss
    assert math.isfinite(loss.item())
    loss.backward()
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert trainable
    missing = [name for name, p in trainable.items() if p.grad is None]
    # Pegasus's sinusoidal position table is a fixed function the model builds without gradient.
    assert [
        name for name in missing if not (model_type == "pegasus" and "embed_positions" in name)
    ] == []
    # LoRA's B starts at zero, so A's first gradient is zero: some, not all, must move.
    assert any(p.grad.abs().sum() > 0 for p in trainable.values())
    if family != "encoder":
        model.eval()
        for text in ("the cat sat on the mat", "two plus two"):
            prompt = tokenizer(text, return_tensors="pt")
            tokens, logits = decode_with_cache(model, prompt, family)
            assert torch.allclose(
                logits, logits_without_cache(model, prompt, family, tokens), atol=1e-4
            )


def decode_with_cache(model, prompt, family, steps=5):
    """What `generate` does (greedy, with its key/value cache): the new tokens it picked and
    the logits it picked them from, one row a step."""
    with torch.no_grad():
        out = model.generate(
            **prompt,
            do_sample=False,
            max_new_tokens=steps,
            min_new_tokens=steps,
            forced_eos_token_id=None,
            output_logits=True,
            return_dict_in_generate=True,
        )
    start = prompt["input_ids"].shape[1] if family == "decoder" else 1  # decoder start token
    return out.sequences[0, start:], torch.cat(out.logits)


def logits_without_cache(model, prompt, family, tokens):
    """The logits the model gives before each of `tokens`, from whole forward passes with no
    cache: a prefix or prompt that `generate` drops or repeats after the first token (or a
    wrong position) shows up as a difference here."""
    if family == "decoder":
        ids = prompt["input_ids"]
    else:
        ids = torch.tensor([[model.config.decoder_start_token_id]])
    rows = []
    with torch.no_grad():
        for token in tokens:
            if family == "decoder":
                logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
            else:
                logits = model(**prompt, decoder_input_ids=ids).logits
            rows.append(logits[0, -1])
            ids = torch.cat([ids, token.view(1, 1)], dim=1)
    return torch.stack(rows)


def test_task_a_family_does_not_serve_is_refused():
    with pytest.raises(
        RefusedError,
        match="bert is an encoder and does not serve causal-lm; tasks it serves: classify, embed",
    ):
        check_method("bert", "lora", "causal-lm")
    with pytest.raises(
        RefusedError,
        match="t5 is an encoder-decoder and does not serve classify; tasks it serves: seq2seq",
    ):
        check_method("t5", "full", "classify")


def test_unknown_method_and_model_type():
    with pytest.raises(
        RefusedError,
        match=r"unknown method 'dora'; methods: "
        r"full, lora, qlora, prefix, ptuning, prompt",
    ):
        check_method("llama", "dora")
    with pytest.raises(
        TllmError, match=r"unknown model_type 'no-such-model': the registry knows bert, "
    ):
        architecture("no-such-model")


def test_other_model_types_are_classified_from_transformers():
    assert architecture("qwen2").family == "decoder"
    assert architecture("electra").family == "encoder"  # it has a causal-LM head too
    assert architecture("mt5").family == "encoder-decoder"
    assert not architecture("qwen2").verified and architecture("llama").verified
    with pytest.raises(TllmError, match="'vit' is not a text model"):
        architecture("vit")


def test_load_hf_refuses_before_loading(tmp_path):
    with pytest.raises(TllmError, match=f"{tmp_path} is not a model directory: no config.json"):
        load_hf(tmp_path)
    # A config and no weights at all: the refusal comes first, so nothing was read.
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "albert"}))
    with pytest.raises(RefusedError, match="prefix cannot train albert"):
        load_hf(tmp_path, method="prefix")
    with pytest.raises(RefusedError, match="does not serve seq2seq"):
        load_hf(tmp_path, task="seq2seq")


def test_registry_imports_no_torch():
    code = (
        "import sys, together_llm.models.families, together_llm.models.load_hf;"
        "print(sorted({'torch', 'transformers', 'peft'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
