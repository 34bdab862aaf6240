"""A peer's local round on the project's training loop: FedProx's proximal term keeps the
local adapter near the global one; only adapter tensors leave the peer."""

import pytest

from tests.together.fed_home import FAST, fed_home  # noqa: F401
from tests.train.conftest import one_thread, tiny_llama  # noqa: F401

torch = pytest.importorskip("torch")


def peer_config(**changes) -> dict:
    from together_llm.together.settings import Federation

    fed = Federation(name="shared", data="sounds", **{**FAST, "local_steps": 6}, **changes)
    return fed.peer_config()


def test_fedprox_pulls_the_local_adapter_towards_the_global_one(fed_home):
    from together_llm.data.split import split_dataset
    from together_llm.together import local

    split_dataset(fed_home, "sounds", 0.2, 0)
    config = peer_config()
    _, hf_dir, _ = local.peer_base(fed_home)
    model, _, _ = local.load_model(hf_dir, local.recipe_for(config, "sounds"))
    start = local.adapter_state(model)
    trained = {}
    for mu in (0.0, 50.0):
        state, found = local.train_round(fed_home, "sounds", config, start, server_round=1, mu=mu)
        trained[mu] = found
        distance = sum(float((state[k] - start[k]).pow(2).sum()) for k in start) ** 0.5
        assert found["drift"] == pytest.approx(distance, rel=1e-5)
    # same rows, same seed: the proximal term alone keeps the adapter much nearer home
    assert trained[50.0]["drift"] < 0.5 * trained[0.0]["drift"]
    assert trained[0.0]["train_loss"] != trained[50.0]["train_loss"]


def test_only_adapter_tensors_travel(fed_home):
    from together_llm.together import local

    config = peer_config()
    _, hf_dir, _ = local.peer_base(fed_home)
    model, _, _ = local.load_model(hf_dir, local.recipe_for(config, "sounds"))
    state = local.adapter_state(model)
    assert state and all(".lora_A." in k or ".lora_B." in k for k in state)  # lm_head's too
    base = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    assert sum(t.numel() for t in state.values()) < 0.2 * base
