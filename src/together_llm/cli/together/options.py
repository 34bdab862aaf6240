"""The federation's settings as click options, shared by `tllm together simulate` and
`tllm together serve` (settings.Federation is what they fill)."""

from __future__ import annotations

import click

from ...together.settings import STRATEGIES, TRANSPORTS, Federation

OPTIONS = [
    click.option("--rounds", type=click.IntRange(1), default=3, show_default=True),
    click.option(
        "--fraction",
        type=float,
        default=1.0,
        show_default=True,
        help="Fraction of the peers sampled to train each round.",
    ),
    click.option("--strategy", type=click.Choice(STRATEGIES), default="fedavg", show_default=True),
    click.option(
        "--aggregate",
        type=click.Choice(("mean", "lora-exact")),
        default="mean",
        show_default=True,
        help="mean: average A and B separately; lora-exact: average "
        "the products B·A and refactor to the rank by SVD.",
    ),
    click.option(
        "--freeze-a",
        is_flag=True,
        help="FFA-LoRA: A stays at a seeded random start on "
        "every peer and only B trains and travels (exact averaging, half the bytes).",
    ),
    click.option(
        "--transport",
        type=click.Choice(TRANSPORTS),
        default="fp32",
        show_default=True,
        help="dtype of the tensors peers send (fp16: half the bytes).",
    ),
    click.option(
        "--mu", type=float, default=0.01, show_default=True, help="FedProx proximal weight."
    ),
    click.option(
        "--server-lr",
        type=float,
        default=0.0,
        help="Server learning rate (default: the strategy's own, FedAdam 1e-3, FedAvgM 1.0).",
    ),
    click.option(
        "--server-momentum",
        type=float,
        default=0.0,
        show_default=True,
        help="FedAvgM's server momentum.",
    ),
    click.option(
        "--local-steps",
        type=click.IntRange(1),
        default=10,
        show_default=True,
        help="Optimizer steps each peer trains per round.",
    ),
    click.option(
        "--dp-noise",
        type=float,
        default=0.0,
        help="DP: Gaussian noise multiplier (with --dp-clip).",
    ),
    click.option(
        "--dp-clip", type=float, default=0.0, help="DP: clipping norm of each peer's update."
    ),
    click.option(
        "--dp-side",
        type=click.Choice(("server", "client")),
        default="server",
        show_default=True,
        help="DP: who clips the updates.",
    ),
    click.option(
        "--optimizer",
        type=click.Choice(("adamw", "sgd")),
        default="adamw",
        show_default=True,
        help="Peers' local optimizer; sgd with --strategy fedadam: Adam runs on the server.",
    ),
    click.option("--lr", type=float, default=2e-4, show_default=True, help="Peers' learning rate."),
    click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True),
    click.option("--max-length", type=click.IntRange(8), default=512, show_default=True),
    click.option("--rank", type=click.IntRange(1), default=8, show_default=True, help="LoRA rank."),
    click.option("--lora-alpha", type=float, default=16.0, show_default=True),
    click.option(
        "--target-modules",
        default="",
        help="LoRA targets, comma-separated (default: the family's).",
    ),
    click.option("--stage", type=click.Choice(("sft", "pt")), default="sft", show_default=True),
    click.option("--base", help="Base model (default: assistant.yaml's); peers must use the same."),
    click.option(
        "--name",
        "-n",
        default="together",
        show_default=True,
        help="The adapter every participating home receives.",
    ),
    click.option(
        "--timeout",
        type=float,
        default=3600.0,
        show_default=True,
        help="Seconds a round waits for its peers; late or vanished ones are left out.",
    ),
    click.option("--seed", type=int, default=42, show_default=True),
    click.option(
        "--eval-every",
        type=click.IntRange(1),
        default=1,
        show_default=True,
        help="Measure the peers' and the global held-out loss every N rounds (and the last).",
    ),
]


def federation_options(func):
    """Decorate a command with every federation setting (passed as keyword arguments)."""
    for option in reversed(OPTIONS):
        func = option(func)
    return func


def federation(settings: dict, **more):
    """The checked settings.Federation of the options' values (`settings`: a command's
    keyword arguments, which hold these options and nothing else) and `more`."""

    values = dict(settings)
    values["alpha"] = values.pop("lora_alpha")
    values["base"] = values["base"] or ""
    return Federation(**values, **more).check()
