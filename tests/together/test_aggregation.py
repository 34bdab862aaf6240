"""Exact LoRA aggregation against FedAvg's factor-by-factor mean: the peers' updates are
B·A, and only the exact aggregation's product is their average (up to the rank)."""

import numpy as np
import pytest

from together_llm.together.aggregation import exact_mean, naive_mean

A, B = "base_model.model.layer.q_proj.lora_A.weight", "base_model.model.layer.q_proj.lora_B.weight"


def peers(rank: int, effective: int, seed: int = 0) -> list[dict]:
    """Three peers' adapters of rank `rank` whose updates B·A have rank `effective`."""
    rng = np.random.default_rng(seed)
    states = []
    for _ in range(3):
        a = rng.normal(size=(rank, 24)).astype(np.float32)
        b = rng.normal(size=(16, rank)).astype(np.float32)
        b[:, effective:] = 0
        states.append({A: a, B: b, "norm.weight": rng.normal(size=4).astype(np.float32)})
    return states


def update(state: dict) -> np.ndarray:
    return state[B].astype(np.float64) @ state[A].astype(np.float64)


def test_exact_aggregation_is_the_mean_of_the_updates_and_the_naive_one_is_not():
    states, weights = peers(rank=4, effective=1), [1, 2, 3]  # mean update has rank 3 <= 4
    true_mean = sum(w / 6 * update(s) for w, s in zip(weights, states))
    exact, naive = exact_mean(states, weights), naive_mean(states, weights)
    assert np.allclose(update(exact), true_mean, atol=1e-4)
    assert np.abs(update(naive) - true_mean).max() > 0.5  # the cross terms BᵢAⱼ
    assert exact[A].shape == states[0][A].shape and exact[B].shape == states[0][B].shape
    # tensors that are no LoRA pair are averaged as they are
    assert np.allclose(
        exact["norm.weight"], sum(w / 6 * s["norm.weight"] for w, s in zip(weights, states))
    )


def test_beyond_the_rank_exact_aggregation_is_the_best_truncation():
    states, weights = peers(rank=4, effective=4, seed=1), [1, 1, 1]  # mean update has rank 12
    true_mean = sum(update(s) / 3 for s in states)
    u, s, vt = np.linalg.svd(true_mean)
    best = (u[:, :4] * s[:4]) @ vt[:4]
    exact, naive = exact_mean(states, weights), naive_mean(states, weights)
    assert np.allclose(update(exact), best, atol=1e-4)
    error = lambda found: np.linalg.norm(update(found) - true_mean)
    assert error(exact) < 0.8 * error(naive)


@pytest.fixture
def in_a_run(monkeypatch):
    """Flower stamps each new Message with the running task's identity; outside a run the
    test gives one, as Flower's own Python simulation API does."""
    from flwr.supercore.task_identity import TaskIdentity

    for key, value in (("_task_id", 1), ("_run_id", 1), ("_node_id", 0)):
        monkeypatch.setattr(TaskIdentity, key, value)


@pytest.mark.parametrize("aggregate", ["mean", "lora-exact"])
def test_the_strategy_aggregates_replies_as_configured(aggregate, in_a_run):
    """Flower's FedProx, as built for a run, on real reply messages."""
    from flwr.app import Array, ArrayRecord, Message, MessageType, MetricRecord, RecordDict

    from together_llm.together.settings import Federation
    from together_llm.together.strategies import build_strategy

    states, weights = peers(rank=4, effective=1), [1, 2, 3]
    strategy = build_strategy(Federation(strategy="fedprox", aggregate=aggregate), sampled=3)
    replies = [
        Message(
            RecordDict(
                {
                    "arrays": ArrayRecord({k: Array(v) for k, v in s.items()}),
                    "metrics": MetricRecord({"num-examples": w}),
                }
            ),
            dst_node_id=i + 1,
            message_type=MessageType.TRAIN,
        )
        for i, (s, w) in enumerate(zip(states, weights))
    ]
    arrays, _ = strategy.aggregate_train(1, replies)
    found = {k: a.numpy() for k, a in arrays.items()}
    expected = (
        exact_mean(states, weights) if aggregate == "lora-exact" else naive_mean(states, weights)
    )
    assert np.allclose(update(found), update(expected), atol=1e-4)
