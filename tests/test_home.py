"""The home and assistant.yaml: created on first use, shown, changed, validated."""

import yaml

from tests.conftest import run_tllm
from together_llm.home import AssistantConfig, Home


def test_home_is_created_on_first_use_with_assistant_yaml(tmp_path):
    target = tmp_path / "new-home"
    result = run_tllm("config", "show", home=target)
    assert result.returncode == 0, result.stderr
    for sub in ("models", "datasets", "adapters", "knowledge", "feedback", "runs", "exports"):
        assert (target / sub).is_dir()
    saved = yaml.safe_load((target / "assistant.yaml").read_text())
    assert saved["model"] == "default"
    assert "generation.temperature = 0.7" in result.stdout


def test_home_flag_wins_over_environment(tmp_path):
    result = run_tllm("config", "show", "--home", tmp_path / "flag", home=tmp_path / "env")
    assert result.returncode == 0
    assert (tmp_path / "flag" / "assistant.yaml").exists()
    assert not (tmp_path / "env").exists()
    before = run_tllm("--home", tmp_path / "group", "config", "show")
    assert before.returncode == 0 and (tmp_path / "group" / "assistant.yaml").exists()


def test_config_set_changes_assistant_yaml(home):
    for name in ("a", "b"):
        (home.adapters_dir / name).mkdir()
        (home.adapters_dir / name / "adapter_config.json").write_text("{}")
        (home.adapters_dir / name / "adapter_model.safetensors").write_bytes(b"")
    assert run_tllm("config", "set", "generation.temperature", "0.2", home=home).returncode == 0
    assert run_tllm("config", "set", "adapters", "a,b", home=home).returncode == 0
    assert run_tllm("config", "set", "generation.seed", "7", home=home).returncode == 0
    config = home.load_config()
    assert config.generation.temperature == 0.2
    assert config.adapters == ["a", "b"]
    assert config.generation.seed == 7
    assert run_tllm("config", "set", "generation.seed", "none", home=home).returncode == 0
    assert home.load_config().generation.seed is None
    # a negative value is a value, not an option (gpu_layers -1: every layer on a GPU)
    assert run_tllm("config", "set", "gpu_layers", "0", home=home).returncode == 0
    assert run_tllm("config", "set", "gpu_layers", "-1", home=home).returncode == 0
    assert home.load_config().gpu_layers == -1


def test_unknown_key_is_refused_with_the_allowed_keys(home):
    result = run_tllm("config", "set", "temprature", "1", home=home)
    assert result.returncode != 0
    assert "unknown config key 'temprature'" in result.stderr
    assert "generation.temperature" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_values_are_refused_with_what_is_allowed(home):
    cases = {
        ("engine", "vllm"): "choose one of auto, llama.cpp, transformers",
        ("generation.temperature", "hot"): "expected a finite number",
        ("generation.temperature", "nan"): "expected a finite number",
        ("generation.top_p", "0"): "top_p must be above 0",
        ("generation.seed", "4294967295"): "seed must be between 0 and 4294967294",
        ("generation.temperature", "5"): "must be between 0 and 2",
        ("context_length", "1.5"): "expected an integer",
        ("gpu_layers", "-2"): "must be at least -1",
    }
    for (key, value), message in cases.items():
        result = run_tllm("config", "set", key, value, home=home)
        assert result.returncode != 0, (key, value)
        assert message in result.stderr, result.stderr
    assert home.load_config() == AssistantConfig()  # nothing was changed


def test_models_and_adapters_named_in_the_config_must_exist(home):
    result = run_tllm("config", "set", "model", "nope", home=home)
    assert result.returncode == 1 and "unknown model 'nope'" in result.stderr
    result = run_tllm("config", "set", "adapters", "ghost", home=home)
    assert result.returncode == 1 and "unknown adapter 'ghost'" in result.stderr
    assert home.load_config() == AssistantConfig()


def test_a_hand_edited_bad_assistant_yaml_is_reported(home):
    home.config_path.write_text("model: default\nsurprise: 1\n")
    result = run_tllm("config", "show", home=home)
    assert result.returncode != 0
    assert "assistant.yaml: unknown config key 'surprise'" in result.stderr


def test_round_trip_keeps_every_setting(tmp_path):
    home = Home.open(tmp_path / "h")
    config = home.load_config()
    config.system_prompt = "Be brief."
    config.generation.top_k = 5
    home.save_config(config)
    assert Home.open(tmp_path / "h").load_config() == config
