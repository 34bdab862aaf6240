"""`tllm optimize` on a tiny LLaMA with the bundled model's tokenizer (test_export.py's
`tiny_smol`, which llama.cpp's converter handles) and a LoRA adapter: every backend is
measured side by side, the choice honours the quality bound, and the chosen backend is
what `tllm ask` then runs on."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from tests.conftest import run_tllm
from tests.export.test_export import tiny_smol  # noqa: F401  (the fixture)
from together_llm.home import Home
from together_llm.optimize.backends import BACKENDS, find_subject, gguf_files
from together_llm.optimize.run import REFERENCE, apply_choice, choose


@pytest.fixture(scope="module")
def home(tmp_path_factory, tiny_smol):  # noqa: F811
    """A home serving the tiny model with adapter `sounds` active (random LoRA weights, B
    made non-zero so the adapter changes the model)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from together_llm.models.fingerprint import fingerprint
    from together_llm.models.registry import add_model

    home = Home.open(tmp_path_factory.mktemp("optimize") / "home")
    add_model(home, "smol", str(tiny_smol))
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_smol),
        LoraConfig(r=4, target_modules=["q_proj", "v_proj"]),
    )
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)
    folder = home.adapters_dir / "sounds"
    model.save_pretrained(folder)
    (folder / "card.json").write_text(
        json.dumps({"name": "sounds", "base": "smol", "base_fingerprint": fingerprint(tiny_smol)})
    )
    config = home.load_config()
    config.model, config.adapters, config.context_length = "smol", ["sounds"], 256
    home.save_config(config)
    return home


@pytest.fixture(scope="module")
def measured(home):
    """`tllm optimize --dry-run --json` over every backend, on three short prompts."""
    from together_llm.cli.optimize import optimize

    before = home.config_path.read_text()
    prompts = home.path.parent / "prompts.txt"
    prompts.write_text('Say hello.\nName a colour.\n{"prompt": "Count to three."}\n')
    result = CliRunner().invoke(
        optimize,
        [
            "--dry-run",
            "--json",
            "--max-tokens",
            "8",
            "--prompts",
            str(prompts),
            "--home",
            str(home.path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert home.config_path.read_text() == before  # a dry run changes nothing
    return json.loads(result.stdout)


def row(result, backend):
    return next(r for r in result["backends"] if r["backend"] == backend)


def test_the_table_holds_every_backend_measured_on_the_same_tokens(home, measured):
    from together_llm.cli.optimize import table

    assert [r["backend"] for r in measured["backends"]] == list(BACKENDS)
    assert measured["adapter"] == "sounds" and measured["prompts"] == 3
    for r in measured["backends"]:
        assert r["status"] == "ok", r
        assert r["decode_tokens_per_s"] > 0 and r["ttft_s"] > 0
        assert r["peak_rss_bytes"] > r["model_bytes"] > 0
        assert math.isfinite(r["perplexity"]) and r["scored_tokens"] == measured["scored_tokens"]
    # bf16 holds half the bytes of fp32; the GGUF sizes shrink with the quantization
    assert (
        row(measured, "transformers-bf16")["model_bytes"]
        < 0.6 * row(measured, REFERENCE)["model_bytes"]
    )
    assert (
        row(measured, "llama.cpp-q8_0")["model_bytes"]
        < row(measured, "llama.cpp-f16")["model_bytes"]
    )
    # the llama.cpp backends never load torch: far less memory than any transformers one
    assert max(
        row(measured, f"llama.cpp-{k}")["peak_rss_bytes"] for k in ("f16", "q8_0", "q4_k_m")
    ) < min(row(measured, f"transformers-{p}")["peak_rss_bytes"] for p in ("fp32", "bf16", "int8"))
    saved = json.loads(
        (home.path / "runs" / measured["run_dir"].split("/")[-1] / "optimize.json").read_text()
    )
    assert saved["backends"] == measured["backends"] and saved["applied"] is None
    lines = table(measured).splitlines()
    assert sum(line.startswith("* ") for line in lines) == 1
    assert all(any(name in line for line in lines) for name in BACKENDS)


def test_gguf_backends_run_the_merged_adapter_and_exports_are_reused(home, measured):
    file = row(measured, "llama.cpp-q8_0")["file"]
    record = json.loads((home.path / "exports" / file.split("/")[-2] / "export.json").read_text())
    assert record["adapter"] == "sounds" and record["base"] == "smol"
    said = []
    subject = find_subject(home, None, said.append)
    exports = sorted(p.name for p in (home.path / "exports").iterdir())
    assert str(gguf_files(home, subject, ["q8_0", "q4_k_m"], said.append)["q8_0"]) == file
    assert sorted(p.name for p in (home.path / "exports").iterdir()) == exports  # nothing new
    assert said and said[-1].startswith("reusing")


def test_the_choice_is_the_fastest_backend_within_the_bound():
    def rows(*figures):
        return [
            {
                "backend": name,
                "status": "ok",
                "perplexity": ppl,
                "decode_tokens_per_s": rate,
                "ttft_s": 0.1,
            }
            for name, ppl, rate in figures
        ]

    table = rows(
        (REFERENCE, 10.0, 10),
        ("transformers-bf16", 10.0, 20),
        ("llama.cpp-q8_0", 10.3, 50),
        ("llama.cpp-q4_k_m", 10.6, 80),
    )
    assert choose(table, 0.05)["backend"] == "llama.cpp-q8_0"  # q4_k_m is 6% worse
    assert [r["within_bound"] for r in table] == [True, True, True, False]
    assert choose(table, 0.10)["backend"] == "llama.cpp-q4_k_m"
    assert choose(table, 0.0)["backend"] == "transformers-bf16"  # equal to the reference
    failed = [{"backend": REFERENCE, "status": "failed", "reason": "out of memory"}]
    with pytest.raises(
        Exception, match="reference backend transformers-fp32 could not be measured"
    ):
        choose(failed, 0.05)


def test_measured_choice_with_no_allowance_never_loses_quality(measured):
    table = json.loads(json.dumps(measured["backends"]))
    reference = row(measured, REFERENCE)["perplexity"]
    assert choose(table, 0.0)["perplexity"] <= reference
    loose = choose(table, 1.0)  # a random tiny model: every backend is within 100%
    assert loose["decode_tokens_per_s"] == max(r["decode_tokens_per_s"] for r in table)


def test_int8_replaces_every_linear_layer_and_keeps_perplexity_close(home, measured):
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    from together_llm.engine.choice import open_engine

    int8 = row(measured, "transformers-int8")
    assert int8["perplexity"] != row(measured, REFERENCE)["perplexity"]  # really another model
    assert abs(int8["ppl_increase"]) < 0.01
    config = home.load_config()
    config.precision = "int8"
    engine = open_engine(home, config)
    layers = [
        type(m) for m in engine.model.modules() if isinstance(m, (torch.nn.Linear, Int8Linear))
    ]
    assert layers and all(kind is Int8Linear for kind in layers)  # the adapter merged, then int8
    assert not hasattr(engine.model, "peft_config")


@pytest.mark.parametrize("backend", ["llama.cpp-q8_0", "transformers-bf16"])
def test_the_applied_backend_is_what_ask_runs_on(home, measured, backend):
    from together_llm.engine.choice import open_engine

    subject = find_subject(home, None, lambda m: None)
    settings = apply_choice(home, json.loads(json.dumps(row(measured, backend))), subject)
    config = home.load_config()
    engine = open_engine(home, config)
    try:
        if backend.startswith("llama.cpp"):
            assert config.engine == "llama.cpp" and config.adapters == []
            assert str(engine.path) == row(measured, backend)["file"]  # the merged q8_0 GGUF
        else:
            assert (config.engine, config.precision, config.adapters) == (
                "transformers",
                "bf16",
                ["sounds"],
            )
            assert next(engine.model.parameters()).dtype == torch.bfloat16
    finally:
        if hasattr(engine, "close"):
            engine.close()
    assert settings["model"] == config.model
    answered = run_tllm(
        "ask", "--json", "--max-tokens", "4", "--temperature", "0", "Hello", home=home
    )
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["usage"]["completion_tokens"] >= 1
    # optimizing again measures the same assistant: the merged GGUF traces back to its base
    again = find_subject(home, None, lambda m: None)
    assert (again.base.name, again.adapter) == ("smol", "sounds")


def test_bad_settings_are_refused_before_any_measuring(tmp_path):
    from together_llm.errors import TllmError
    from together_llm.optimize.benchmark_set import read_prompts
    from together_llm.optimize.run import optimize

    home = Home.open(tmp_path / "home")
    with pytest.raises(TllmError, match="--max-ppl-increase is a fraction"):
        optimize(home, max_ppl_increase=-0.1)
    with pytest.raises(TllmError, match="unknown backend 'onnx'; backends: transformers-fp32"):
        optimize(home, backends=["onnx"])
    bad = tmp_path / "prompts.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"text": "no prompt"}\n')
    with pytest.raises(TllmError, match='line 2: a JSON row needs a "prompt" string'):
        read_prompts(bad)
    assert (
        list((home.path / "runs").iterdir()) == [] and list((home.path / "exports").iterdir()) == []
    )
