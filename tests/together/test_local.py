"""A peer's local round on the project's training loop: FedProx's proximal term keeps the
local adapter near the global one; only adapter tensors leave the peer."""

import dataclasses

import pytest
import torch

from tests.together.fed_home import FAST
from together_llm.adapters.card import AdapterCard


def peer_config(**changes):
    from together_llm.together.settings import Federation

    fed = Federation(name="shared", data="sounds", **{**FAST, "local_steps": 6, **changes})
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


def test_ffa_lora_builds_the_same_frozen_a_everywhere_and_sends_only_b(fed_home, tiny_llama):
    import peft
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from together_llm.together import local

    config = peer_config(freeze_a=True)
    _, hf_dir, _ = local.peer_base(fed_home)

    def a_tensors(seed):
        local._CACHE.clear()  # another process: a fresh model
        model, _, _ = local.load_model(
            hf_dir, local.recipe_for(dataclasses.replace(config, seed=seed), "sounds"), True
        )
        return {n: p.detach().clone() for n, p in model.named_parameters() if ".lora_A." in n}

    first, again, other = a_tensors(42), a_tensors(42), a_tensors(43)
    assert first and all(torch.equal(first[n], again[n]) for n in first)
    assert not any(torch.equal(first[n], other[n]) for n in first)

    local._CACHE.clear()
    model, _, _ = local.load_model(hf_dir, local.recipe_for(config, "sounds"), True)
    start = local.adapter_state(model)
    assert start and all(".lora_B." in k for k in start)  # A never travels
    state, found = local.train_round(fed_home, "sounds", config, start, server_round=1)
    assert set(state) == set(start) and found["drift"] > 0
    assert all(torch.equal(p, first[n]) for n, p in model.named_parameters() if ".lora_A." in n)

    folder = local.save(fed_home, config, state, AdapterCard(data="sounds"))
    saved = load_file(folder / "adapter_model.safetensors")
    assert any(".lora_A." in k for k in saved)  # the saved adapter is whole
    loaded = peft.PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_llama), folder
    )
    assert loaded.peft_config["default"].r == config.rank


def test_a_plain_gradient_step_moves_as_far_as_the_clipped_gradient(fed_home):
    """optimizer sgd (the peers of FedOpt): one step moves the adapter by lr x the clipped
    gradient (norm <= 1); AdamW's first step moves every entry by about lr."""
    from together_llm.together import local

    moved = {}
    for optimizer in ("sgd", "adamw"):
        config = peer_config(optimizer=optimizer, local_steps=1, lr=1e-3)
        _, hf_dir, _ = local.peer_base(fed_home)
        model, _, _ = local.load_model(hf_dir, local.recipe_for(config, "sounds"))
        start = local.adapter_state(model)
        _, found = local.train_round(fed_home, "sounds", config, start, server_round=1)
        moved[optimizer] = found["drift"]
    entries = sum(t.numel() for t in start.values())
    assert 0 < moved["sgd"] <= 1e-3 * (1 + 1e-4)
    assert moved["adamw"] > 0.3 * 1e-3 * entries**0.5
