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
from ..settings_kit import (
    check_fields,
    from_mapping,
    from_options,
    kebab_name,
    setting,
    to_mapping,
)
from ..train.recipe import OPTIMIZERS

STRATEGIES = ("fedavg", "fedavgm", "fedprox", "fedadam")
AGGREGATES = ("mean", "lora-exact")
TRANSPORTS = ("fp32", "fp16", "int8")  # how peers send their adapter (arrays.to_record)
DP_SIDES = ("server", "client")
STAGES = ("sft", "pt")  # causal-LM stages of our own loop: what a peer trains locally


@dataclass
class Federation:
    # where and what: filled by the command, not flags of their own
    run_dir: str = setting(
        "", "the run's folder: metrics.jsonl, config.yaml, adapter/, plots/", cli=False
    )
    run_id: str = setting("", "the run's id", cli=False)
    name: str = setting("together", "The adapter every participating home receives.", short="-n")
    server_home: str = setting(
        "", "the coordinator's home: its base model (and global eval data)", cli=False
    )
    base: str = setting("", "Base model (default: assistant.yaml's); peers must use the same.")
    eval_data: str = setting("", "a dataset of server_home for the global held-out loss", cli=False)
    data: str = setting("", "the peers' dataset name (each home its own rows)", cli=False)
    stage: str = setting(
        "sft", "What peers train locally (causal-LM stages of our loop).", choices=STAGES
    )
    # rounds and sampling
    rounds: int = setting(3, "Rounds of local training and aggregation.", low=1)
    min_peers: int = setting(2, "wait for this many peers before the first round", low=1, cli=False)
    fraction: float = setting(
        1.0, "Fraction of the peers sampled to train each round.", above=0, high=1
    )
    timeout: float = setting(
        3600.0, "Seconds a round waits for its peers; late or vanished ones are left out.", above=0
    )
    eval_every: int = setting(
        1, "Measure the peers' and the global held-out loss every N rounds (and the last).", low=1
    )
    # aggregation
    strategy: str = setting(
        "fedavg", "How the server combines the peers' adapters.", choices=STRATEGIES
    )
    aggregate: str = setting(
        "mean",
        "mean: average A and B separately; lora-exact: average the products B·A and refactor to the rank by SVD.",
        choices=AGGREGATES,
    )
    mu: float = setting(0.01, "FedProx proximal weight.", low=0)
    server_lr: float = setting(
        0.0, "Server learning rate (0: the strategy's own, FedAdam 1e-3, FedAvgM 1.0).", low=0
    )
    server_momentum: float = setting(0.0, "FedAvgM's server momentum.", low=0, below=1)
    dp_noise: float = setting(
        0.0, "DP: Gaussian noise multiplier (with --dp-clip); 0: no DP.", low=0
    )
    dp_clip: float = setting(0.0, "DP: clipping norm of each peer's update.", low=0)
    dp_side: str = setting(
        "server", "DP: who clips the updates (the server, or each peer's mod).", choices=DP_SIDES
    )
    # local training (a peer's recipe)
    local_steps: int = setting(10, "Optimizer steps each peer trains per round.", low=1)
    optimizer: str = setting(
        "adamw",
        "Peers' local optimizer; sgd with --strategy fedadam: Adam runs on the server.",
        choices=OPTIMIZERS,
    )
    lr: float = setting(2e-4, "Peers' learning rate.", above=0)
    batch_size: int = setting(4, "Peers' batch size.", low=1)
    max_length: int = setting(512, "Longest training example, in tokens.", low=8)
    rank: int = setting(8, "LoRA rank.", low=1)
    alpha: float = setting(16.0, "LoRA alpha.", above=0, flag="--lora-alpha")
    dropout: float = setting(0.0, "LoRA dropout.", low=0, below=1)
    target_modules: str = setting("", "LoRA targets, comma-separated (default: the family's).")
    seed: int = setting(42, "Seed of the peers' sampling and of the server's peer choice.")
    # FFA-LoRA: every peer's A matrices stay at the same seeded random start (made from the
    # seed and each tensor's name, never sent); only B trains and travels. The mean of the
    # B's is then exactly the mean of the updates B·A, and half the bytes move.
    freeze_a: bool = setting(
        False,
        "FFA-LoRA: A stays at a seeded random start on every peer and only B trains and "
        "travels (exact averaging, half the bytes).",
    )
    transport: str = setting(
        "fp32",
        "dtype of the tensors peers send (fp16: half the bytes; int8: the update, a quarter).",
        choices=TRANSPORTS,
    )

    def check(self) -> Federation:
        """Every value against its field, then what no single field can check."""
        check_fields(self)
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
        return self

    @property
    def dp(self) -> bool:
        return self.dp_noise > 0

    def to_run_config(self) -> dict:
        """Flower run-config form: kebab-case keys, str/int/float/bool values."""
        return to_mapping(self, name=kebab_name)

    @classmethod
    def from_run_config(cls, config) -> Federation:
        """The settings of a Flower run config; unknown keys are refused by name."""
        fed = from_mapping(cls, dict(config), what="federation setting", name=kebab_name)
        return fed.check()

    @classmethod
    def from_flags(cls, values: dict, **fixed) -> Federation:
        """The checked settings of `federation_options`' values and `fixed` ones."""
        return from_options(cls, values, **fixed).check()

    def peer_config(self, base_fingerprint: str = "") -> PeerConfig:
        """What each peer needs to train and evaluate: sent in every round's ConfigRecord."""
        ours = {f.name for f in dataclasses.fields(self)}
        shared = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(PeerConfig) if f.name in ours
        }
        return PeerConfig(**{**shared, "base_fingerprint": base_fingerprint})


# Keys Flower and our recorder add to a round's ConfigRecord besides the PeerConfig's.
ROUND_KEYS = ("server-round", "proximal-mu", "final", "peers")


@dataclass
class PeerConfig:
    """The part of a federation's settings every peer trains and evaluates with. It travels
    as each round's ConfigRecord (`to_record`); both Flower apps read it back with
    `from_record`, so a key is spelt in one place."""

    name: str = "together"
    run_id: str = ""
    base_fingerprint: str = ""  # "" = not checked (a peer refuses another base otherwise)
    stage: str = "sft"
    rounds: int = 3
    local_steps: int = 10
    strategy: str = "fedavg"
    aggregate: str = "mean"
    dp_noise: float = 0.0
    dp_clip: float = 0.0
    optimizer: str = "adamw"
    lr: float = 2e-4
    batch_size: int = 4
    max_length: int = 512
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: str = ""
    seed: int = 42
    freeze_a: bool = False
    transport: str = "fp32"

    def to_record(self) -> dict[str, Any]:
        """ConfigRecord form: kebab-case keys, str/int/float/bool values."""
        return {f.name.replace("_", "-"): getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_record(cls, record) -> PeerConfig:
        """The PeerConfig of a round's ConfigRecord; the round's own keys (ROUND_KEYS) are
        left to the caller, and any other unknown key is refused by name: a coordinator
        and a peer of different versions fail loudly instead of training on defaults."""
        ours = {k: v for k, v in dict(record).items() if k not in ROUND_KEYS}
        return from_mapping(cls, ours, what="peer setting", name=kebab_name)

    @property
    def target_list(self) -> list[str]:
        return [t.strip() for t in self.target_modules.split(",") if t.strip()]
