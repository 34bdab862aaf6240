"""The server's strategy, from the settings: Flower's own FedAvg, FedAvgM, FedProx or FedAdam,
optionally aggregating LoRA pairs exactly (aggregation.py), optionally wrapped in Flower's
differential-privacy fixed-clipping wrapper (clipping on the server, or on each peer by
Flower's `fixedclipping_mod`, with Gaussian noise on the aggregate).
"""

from __future__ import annotations

from typing import Any

from .aggregation import exact_mean
from .settings import Federation


def build_strategy(fed: Federation, sampled: int):
    """The strategy for `fed`; `sampled` is how many peers a round trains (the DP noise is
    calibrated to it)."""
    from flwr.serverapp.strategy import (
        DifferentialPrivacyClientSideFixedClipping,
        DifferentialPrivacyServerSideFixedClipping,
        FedAdam,
        FedAvg,
        FedAvgM,
        FedProx,
        Strategy,
    )

    common: dict[str, Any] = dict(
        fraction_train=fed.fraction,
        fraction_evaluate=1.0,
        min_train_nodes=1,
        min_evaluate_nodes=1,
        min_available_nodes=fed.min_peers,
    )
    cls: type[FedAvg]  # each strategy below is FedAvg or a subclass
    extra: dict[str, Any]  # the strategy's own arguments
    if fed.strategy == "fedprox":
        cls, extra = FedProx, {"proximal_mu": fed.mu}
    elif fed.strategy == "fedadam":
        # tau: Adam's epsilon. LoRA updates per round are ~1e-3, so Flower's default 1e-3
        # would halve every step; eta is the server's step size.
        cls, extra = FedAdam, {"eta": fed.server_lr or 1e-3, "tau": 1e-6}
    elif fed.strategy == "fedavgm":
        # server_lr > 1 lengthens the averaged step: with peers on disjoint data the mean of
        # their updates is each one's divided by the number of peers
        cls, extra = (
            FedAvgM,
            {"server_learning_rate": fed.server_lr or 1.0, "server_momentum": fed.server_momentum},
        )
    else:
        cls, extra = FedAvg, {}
    if fed.aggregate == "lora-exact":
        cls = exact(cls)
    strategy: Strategy = cls(**common, **extra)
    if fed.dp:
        wrapper = (
            DifferentialPrivacyServerSideFixedClipping
            if fed.dp_side == "server"
            else DifferentialPrivacyClientSideFixedClipping
        )
        strategy = wrapper(
            strategy,
            noise_multiplier=fed.dp_noise,
            clipping_norm=fed.dp_clip,
            num_sampled_clients=sampled,
        )
    return strategy


def exact(cls):
    """Strategy class `cls` (FedAvg or a subclass that keeps its aggregation) with LoRA
    pairs aggregated exactly: Exact's aggregate_train comes right before FedAvg's."""
    ExactLoRA = _exact_lora()
    if cls.__name__ == "FedAvg":
        return ExactLoRA
    return type(f"ExactLoRA{cls.__name__}", (cls, ExactLoRA), {})


def _exact_lora():
    from flwr.app import Array, ArrayRecord
    from flwr.serverapp.strategy import FedAvg

    class ExactLoRAFedAvg(FedAvg):
        """FedAvg whose arrays are averaged as LoRA updates B·A (aggregation.exact_mean)."""

        def aggregate_train(self, server_round, replies):
            valid, _ = self._check_and_log_replies(replies, is_train=True)
            if not valid:
                return None, None
            contents = [message.content for message in valid]
            weights = [
                float(next(iter(c.metric_records.values()))[self.weighted_by_key]) for c in contents
            ]
            states = [
                {k: a.numpy() for k, a in next(iter(c.array_records.values())).items()}
                for c in contents
            ]
            merged = exact_mean(states, weights)
            arrays = ArrayRecord({k: Array(v) for k, v in merged.items()})
            return arrays, self.train_metrics_aggr_fn(contents, self.weighted_by_key)

    return ExactLoRAFedAvg
