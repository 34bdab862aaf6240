"""Every setting of a federation, in one typed dataclass.

The ServerApp reads them from Flower's run config (`flwr run --run-config`, or the object
`simulate` hands it); the part peers need (how to train, which base) travels to them in each
round's ConfigRecord, so a peer joins knowing nothing but its home and dataset. Keys are
Flower-style: `local_steps` is `local-steps` in a run config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import TllmError
from ..train.recipe import OPTIMIZERS

STRATEGIES = ("fedavg", "fedavgm", "fedprox", "fedadam")
AGGREGATES = ("mean", "lora-exact")
TRANSPORTS = ("fp32", "fp16", "int8")  # how peers send their adapter (arrays.to_record)
DP_SIDES = ("server", "client")
STAGES = ("sft", "pt")  # causal-LM stages of our own loop: what a peer trains locally


@dataclass
class Federation:
    # where and what
    run_dir: str = ""  # the run's folder: metrics.jsonl, config.yaml, adapter/, plots/
    run_id: str = ""
    name: str = "together"  # the adapter every participating home receives
    server_home: str = ""  # the coordinator's home: its base model (and global eval data)
    base: str = ""  # base model name in server_home
    eval_data: str = ""  # a dataset of server_home for the global held-out loss ("" = none)
    data: str = ""  # the peers' dataset name (each home its own rows)
    stage: str = "sft"
    # rounds and sampling
    rounds: int = 3
    min_peers: int = 2  # wait for this many peers before the first round
    fraction: float = 1.0  # fraction of the peers sampled to train each round
    timeout: float = 3600.0  # seconds a round waits for replies; later ones are dropped
    eval_every: int = 1  # peers' and the global held-out loss every N rounds (and the last)
    # aggregation
    strategy: str = "fedavg"
    aggregate: str = "mean"
    mu: float = 0.01  # fedprox's proximal weight
    server_lr: float = 0.0  # server learning rate; 0 = the strategy's own (fedadam 1e-3, fedavgm 1)
    server_momentum: float = 0.0  # fedavgm's server momentum
    dp_noise: float = 0.0  # Gaussian noise multiplier; 0 with dp_clip 0: no DP
    dp_clip: float = 0.0  # clipping norm of each peer's update
    dp_side: str = "server"  # who clips: the server (fixed clipping) or each peer (its mod)
    # local training (a peer's recipe)
    local_steps: int = 10
    optimizer: str = "adamw"  # a peer's local optimizer: adamw, or sgd (with fedadam/fedavgm)
    lr: float = 2e-4
    batch_size: int = 4
    max_length: int = 512
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: str = ""  # comma-separated; "" = the family's own
    seed: int = 42
    # FFA-LoRA: every peer's A matrices stay at the same seeded random start (made from the
    # seed and each tensor's name, never sent); only B trains and travels. The mean of the
    # B's is then exactly the mean of the updates B·A, and half the bytes move.
    freeze_a: bool = False
    transport: str = (
        "fp32"  # what peers send: fp32; fp16 (half the bytes); int8 (the update, a quarter)
    )

    def check(self) -> Federation:
        if self.strategy not in STRATEGIES:
            raise TllmError(
                f"unknown strategy {self.strategy!r}; strategies: {', '.join(STRATEGIES)}"
            )
        if self.aggregate not in AGGREGATES:
            raise TllmError(
                f"unknown aggregation {self.aggregate!r}; choose {', '.join(AGGREGATES)}"
            )
        if self.dp_side not in DP_SIDES:
            raise TllmError(f"--dp-side must be server or client, not {self.dp_side!r}")
        if self.stage not in STAGES:
            raise TllmError(
                f"federated training runs stage {' or '.join(STAGES)}, not {self.stage!r}"
            )
        if self.transport not in TRANSPORTS:
            raise TllmError(
                f"--transport must be one of {', '.join(TRANSPORTS)}, not {self.transport!r}"
            )
        if self.transport == "int8" and self.dp and self.dp_side == "client":
            raise TllmError(
                "client-side DP clips the adapter a peer sends, and --transport int8 "
                "sends a quantized update instead; use --dp-side server"
            )
        if self.aggregate == "lora-exact" and self.strategy in ("fedadam", "fedavgm"):
            raise TllmError(
                f"--aggregate lora-exact refactors B·A by SVD every round, so the "
                f"factors' basis changes between rounds and {self.strategy}'s server "
                f"optimizer would mix unrelated coordinates; use it with fedavg or "
                f"fedprox (or, instead of it, --freeze-a: its plain mean is exact "
                f"with any strategy)"
            )
        if self.aggregate == "lora-exact" and self.freeze_a:
            raise TllmError(
                "--freeze-a already makes the mean exact (only B travels); "
                "leave --aggregate at mean"
            )
        if (self.dp_noise > 0) != (self.dp_clip > 0):
            raise TllmError(
                "differential privacy needs both --dp-noise S (> 0) and --dp-clip C (> 0)"
            )
        if self.optimizer not in OPTIMIZERS:
            raise TllmError(
                f"--optimizer must be {' or '.join(OPTIMIZERS)}, not {self.optimizer!r}"
            )
        for key, low in (
            ("rounds", 1),
            ("local_steps", 1),
            ("batch_size", 1),
            ("rank", 1),
            ("min_peers", 1),
            ("max_length", 8),
            ("eval_every", 1),
        ):
            if getattr(self, key) < low:
                raise TllmError(f"--{key.replace('_', '-')} must be at least {low}")
        for key in ("lr", "alpha", "timeout"):
            if not getattr(self, key) > 0:
                raise TllmError(f"--{key.replace('_', '-')} must be greater than 0")
        if self.server_lr < 0 or not 0 <= self.server_momentum < 1:
            raise TllmError(
                "--server-lr cannot be negative (0: the strategy's own) and "
                "--server-momentum is in [0, 1)"
            )
        if not 0 < self.fraction <= 1:
            raise TllmError("--fraction must be in (0, 1]")
        if self.mu < 0 or self.dp_noise < 0 or self.dp_clip < 0 or not 0 <= self.dropout < 1:
            raise TllmError(
                "--mu, --dp-noise and --dp-clip cannot be negative; --dropout is in [0, 1)"
            )
        return self

    @property
    def dp(self) -> bool:
        return self.dp_noise > 0

    def to_run_config(self) -> dict:
        """Flower run-config form: kebab-case keys, str/int/float/bool values."""
        return {k.replace("_", "-"): v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_run_config(cls, config) -> Federation:
        """The settings of a Flower run config; unknown keys are refused by name."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}  # each setting in the type of its default
        for key, value in dict(config).items():
            name = key.replace("-", "_")
            if name not in known:
                raise TllmError(
                    f"unknown federation setting {key!r}; settings: "
                    f"{', '.join(k.replace('_', '-') for k in known)}"
                )
            default = known[name].default
            assert default is not dataclasses.MISSING  # every setting has a default
            kind = type(default)
            values[name] = _bool(value) if kind is bool else kind(value)
        return cls(**values).check()

    def peer_config(self) -> dict:
        """What each peer needs to train and evaluate: sent in every round's ConfigRecord."""
        keys = (
            "stage",
            "local_steps",
            "lr",
            "batch_size",
            "max_length",
            "rank",
            "alpha",
            "dropout",
            "target_modules",
            "seed",
            "name",
            "run_id",
            "rounds",
            "freeze_a",
            "transport",
            "optimizer",
        )
        return {k.replace("_", "-"): getattr(self, k) for k in keys}


def _bool(value) -> bool:
    """A run-config boolean: a bool, or the strings true/false (flwr --run-config)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false", "1", "0"):
        raise TllmError(f"expected true or false, not {value!r}")
    return text in ("true", "1")
