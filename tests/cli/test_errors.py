"""Bad input gets a specific one-line message and a non-zero exit; --debug adds the
traceback."""

from tests.conftest import run_tllm
from tests.tiny_models import make_tiny_model


def test_unknown_model_name(home):
    result = run_tllm("ask", "--model", "nope", "hi", home=home)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: unknown model 'nope'; models: default (add one with `tllm models add NAME SOURCE`)"
    )


def test_prompt_longer_than_the_context(home):
    assert run_tllm("config", "set", "context_length", "64", home=home).returncode == 0
    result = run_tllm("ask", "word " * 200, home=home)
    assert result.returncode == 1
    assert "but the context holds 64" in result.stderr
    assert "Traceback" not in result.stderr


def test_empty_prompt_and_bad_sampling_values(home):
    assert "the prompt is empty" in run_tllm("ask", "  ", home=home).stderr
    result = run_tllm("ask", "--temperature", "9", "hi", home=home)
    assert result.returncode == 1 and "temperature must be between 0 and 2" in result.stderr


def test_unknown_adapter_names_the_known_ones(home, tmp_path):
    model_dir = make_tiny_model("llama", tmp_path / "tiny", "causal-lm")
    assert run_tllm("models", "add", "tiny", model_dir, home=home).returncode == 0
    (home.adapters_dir / "real").mkdir()
    (home.adapters_dir / "real" / "adapter_config.json").write_text("{}")
    result = run_tllm("ask", "--model", "tiny", "--adapter", "ghost", "hi", home=home)
    assert result.returncode == 1
    assert "unknown adapter 'ghost'; adapters: real" in result.stderr
    pickled = run_tllm("ask", "--model", "tiny", "--adapter", "real", "hi", home=home)
    assert "has no adapter_model.safetensors" in pickled.stderr


def test_an_unknown_adapter_is_refused_by_name_on_either_engine(home):
    for engine in ("llama.cpp", "transformers"):
        result = run_tllm("ask", "--adapter", "ghost", "--engine", engine, "hi", home=home)
        assert result.returncode == 1 and "unknown adapter 'ghost'" in result.stderr


def test_context_length_beyond_the_model_is_refused_before_loading(home):
    assert run_tllm("config", "set", "context_length", "100000", home=home).returncode == 0
    result = run_tllm("ask", "hi", home=home)
    assert result.returncode == 1 and "was trained for (8192)" in result.stderr


def test_debug_shows_the_traceback(home):
    result = run_tllm("ask", "--model", "nope", "hi", "--debug", home=home)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "unknown model 'nope'" in result.stderr


def test_usage_errors_come_from_the_parser(home):
    result = run_tllm("ask", home=home)
    assert result.returncode == 2 and "Missing argument 'PROMPT'" in result.stderr
