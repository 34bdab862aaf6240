"""`tllm models`: the registry holds the default model, GGUF files, HF directories and hub
ids, and refuses anything else with a specific message."""

import json
import os
import shutil

import pytest

from tests.conftest import run_tllm
from tests.tiny_models import make_tiny_model
from together_llm.models.gguf_file import bundled_gguf


def test_default_is_listed_and_described(home):
    result = run_tllm("models", "list", "--json", home=home)
    assert result.returncode == 0, result.stderr
    [default] = json.loads(result.stdout)
    assert default["name"] == "default" and default["kind"] == "default"
    info = json.loads(run_tllm("models", "info", "default", "--json", home=home).stdout)
    assert info["architecture"] == "llama"
    assert info["context_length"] == 8192
    assert 100e6 < info["parameters"] < 200e6  # SmolLM2-135M
    assert info["has_chat_template"] is True


def test_add_a_local_hf_directory_and_a_gguf_file(home, tmp_path):
    model_dir = make_tiny_model("gpt2", tmp_path / "tiny-gpt2", "causal-lm")
    assert run_tllm("models", "add", "tiny", model_dir, home=home).returncode == 0
    assert run_tllm("models", "add", "smol", bundled_gguf(), home=home).returncode == 0
    listed = {
        m["name"]: m for m in json.loads(run_tllm("models", "list", "--json", home=home).stdout)
    }
    assert listed["tiny"]["kind"] == "hf" and listed["tiny"]["hf_dir"] == str(model_dir)
    assert listed["smol"]["kind"] == "gguf"
    info = json.loads(run_tllm("models", "info", "tiny", "--json", home=home).stdout)
    assert info["family"] == "decoder" and info["model_type"] == "gpt2"
    assert len(info["fingerprint"]) == 16


def test_duplicate_and_unsafe_names_are_refused(home, tmp_path):
    model_dir = make_tiny_model("gpt2", tmp_path / "m", "causal-lm")
    assert run_tllm("models", "add", "tiny", model_dir, home=home).returncode == 0
    again = run_tllm("models", "add", "tiny", model_dir, home=home)
    assert again.returncode != 0 and "already exists" in again.stderr
    unsafe = run_tllm("models", "add", "../evil", model_dir, home=home)
    assert unsafe.returncode != 0 and "invalid model name" in unsafe.stderr


@pytest.mark.parametrize(
    "case",
    ["missing", "not-a-model-dir", "not-gguf", "corrupt-gguf", "truncated-gguf", "pickle-only"],
)
def test_bad_sources_are_refused_with_a_specific_message(home, tmp_path, case):
    if case == "missing":
        source, message = tmp_path / "nope.gguf", "no such file or directory"
    elif case == "not-a-model-dir":
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "notes.txt").write_text("hello")
        source, message = tmp_path / "docs", "is not a model directory: no config.json"
    elif case == "not-gguf":
        source, message = tmp_path / "model.gguf", "is not a GGUF file"
        source.write_text("this is text")
    elif case == "corrupt-gguf":
        source, message = tmp_path / "corrupt.gguf", "truncated or corrupt"
        source.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + os.urandom(4000))
    elif case == "truncated-gguf":
        source, message = tmp_path / "half.gguf", "truncated"
        source.write_bytes(bundled_gguf().read_bytes()[:20_000_000])
    else:
        model_dir = make_tiny_model("gpt2", tmp_path / "m", "causal-lm")
        (model_dir / "model.safetensors").rename(model_dir / "pytorch_model.bin")
        source, message = model_dir, "has no *.safetensors weights"
    result = run_tllm("models", "add", "x", source, home=home)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "x" not in [
        m["name"] for m in json.loads(run_tllm("models", "list", "--json", home=home).stdout)
    ]


def test_hub_id_without_network_fails_at_once_saying_so(home):
    env_endpoint = "http://127.0.0.1:9"  # nothing listens there: like a machine offline
    os.environ["HF_ENDPOINT"] = env_endpoint
    try:
        result = run_tllm("models", "add", "hubby", "someone/some-model", home=home, timeout=30)
    finally:
        del os.environ["HF_ENDPOINT"]
    assert result.returncode != 0
    assert "cannot reach 127.0.0.1" in result.stderr and "offline" in result.stderr


def test_unknown_model_name_lists_the_known_ones(home):
    result = run_tllm("models", "info", "nope", home=home)
    assert result.returncode != 0
    assert "unknown model 'nope'; models: default" in result.stderr


def test_a_gguf_damaged_after_it_was_added_is_reported_when_used(home, tmp_path):
    copy = tmp_path / "copy.gguf"
    shutil.copyfile(bundled_gguf(), copy)
    assert run_tllm("models", "add", "copy", copy, home=home).returncode == 0
    with open(copy, "r+b") as handle:
        handle.truncate(20_000_000)
    result = run_tllm("ask", "--model", "copy", "hello", home=home)
    assert result.returncode != 0
    assert "llama.cpp could not load" in result.stderr and "truncated" in result.stderr
    assert "Traceback" not in result.stderr
