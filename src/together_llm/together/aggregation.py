"""Exact aggregation of LoRA adapters: average the updates B·A, not the factors.

A LoRA adapter changes a weight by B·A (times alpha/r). Averaging the A's and the B's
separately, as FedAvg does with any tensors, gives (Σ wᵢBᵢ)(Σ wⱼAⱼ), which has the cross
terms wᵢwⱼBᵢAⱼ: not the mean of the peers' updates. Here the weighted mean Σ wᵢBᵢAᵢ is formed
exactly and refactored to the adapter's rank by SVD (the best rank-r approximation), so the
only error is the truncation. The full d_out x d_in product is never built: Σ wᵢBᵢAᵢ is the
product of the stacked factors [w₁B₁ … wₙBₙ] and [A₁; …; Aₙ], whose QR factors reduce the
SVD to an (n·r) x (n·r) matrix.

Tensors that are not LoRA pairs (DoRA magnitudes, biases) are averaged as they are.
"""

from __future__ import annotations

LORA_A, LORA_B = "lora_A", "lora_B"


def lora_pairs(names) -> tuple[list[tuple[str, str]], list[str]]:
    """([(A name, B name), ...], other names): PEFT names a pair's tensors alike but for
    lora_A / lora_B."""
    names = set(names)
    pairs, others = [], []
    for name in sorted(names):
        if f".{LORA_A}." in name and name.replace(f".{LORA_A}.", f".{LORA_B}.") in names:
            pairs.append((name, name.replace(f".{LORA_A}.", f".{LORA_B}.")))
        elif not (f".{LORA_B}." in name and name.replace(f".{LORA_B}.", f".{LORA_A}.") in names):
            others.append(name)
    return pairs, others


def exact_mean(states: list[dict], weights: list[float]) -> dict:
    """The weighted mean of adapters `states` (name -> numpy array), LoRA pairs refactored
    from the mean of their products at each pair's own rank."""
    import numpy as np

    total = float(sum(weights))
    if not states or total <= 0:
        raise ValueError("nothing to aggregate: no adapters, or weights summing to zero")
    shares = [w / total for w in weights]
    pairs, others = lora_pairs(states[0])
    merged = {
        name: sum(s * state[name].astype(np.float64) for s, state in zip(shares, states))
        for name in others
    }
    for a_name, b_name in pairs:
        a, b = refactor(
            [state[b_name] for state in states],
            [state[a_name] for state in states],
            shares,
            rank=states[0][a_name].shape[0],
        )
        merged[a_name], merged[b_name] = a, b
    return {name: merged[name].astype(np.float32) for name in states[0]}


def refactor(bs: list, as_: list, shares: list[float], rank: int):
    """(A, B) of rank `rank` with B·A the best rank-`rank` approximation of Σ sᵢBᵢAᵢ."""
    import numpy as np

    b_stack = np.concatenate([s * b.astype(np.float64) for s, b in zip(shares, bs)], axis=1)
    a_stack = np.concatenate([a.astype(np.float64) for a in as_], axis=0)
    q_b, r_b = np.linalg.qr(b_stack)  # B stack = Q_b R_b
    q_a, r_a = np.linalg.qr(a_stack.T)  # A stack = R_aᵀ Q_aᵀ
    u, s, vt = np.linalg.svd(r_b @ r_a.T)
    keep = min(rank, s.shape[0])
    root = np.sqrt(s[:keep])
    b = np.zeros((b_stack.shape[0], rank))
    a = np.zeros((rank, a_stack.shape[1]))
    b[:, :keep] = (q_b @ u[:, :keep]) * root  # the singular values split evenly
    a[:keep] = root[:, None] * (vt[:keep] @ q_a.T)
    return a, b


def naive_mean(states: list[dict], weights: list[float]) -> dict:
    """Every tensor averaged on its own (what FedAvg does): for comparison."""
    total = float(sum(weights))
    return {
        name: sum(w / total * state[name] for w, state in zip(weights, states))
        for name in states[0]
    }
