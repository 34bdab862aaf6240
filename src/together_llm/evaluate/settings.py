"""What `tllm eval` is asked: one settings class, each field one of its options."""

from __future__ import annotations

from dataclasses import dataclass

from ..settings_kit import setting


@dataclass
class EvalSettings:
    """What `tllm eval` was asked: each field is one of its options."""

    data: str = setting(
        help="The dataset to evaluate on (its eval split when it has one).",
        short="-d",
        metavar="NAME",
    )
    adapter: str | None = setting(
        None,
        "Evaluate this adapter, beside the base model it was trained on.",
        short="-a",
        metavar="A",
    )
    model: str | None = setting(
        None,
        "Evaluate this model (local or a remote endpoint), beside the home's model.",
        short="-m",
        metavar="M",
    )
    metrics: list[str] | None = setting(
        None,
        "Among ppl, rouge, bleu, chrf, em, f1, mc, judge "
        "(default: every one the dataset's kind supports, but judge).",
        metavar="M1,M2",
    )
    report: bool = setting(
        False,
        "Evaluate the base model too and write report.md, report.html and PNG charts, "
        "with robustness on perturbed prompts.",
    )
    judge: str | None = setting(
        None,
        "Who grades answers for the judge metric: a model (local or remote), an adapter, "
        "or home:PATH (default: the home's model).",
        short="-j",
        metavar="NAME",
    )
    limit: int = setting(100, "Evaluate at most N rows, drawn with --seed.", low=1)
    seed: int = setting(0, "Seed for drawing rows and perturbing prompts.")
    max_tokens: int = setting(128, "Longest generated answer, in tokens (greedy decoding).", low=1)
    window: int | None = setting(
        None, "Perplexity window in tokens (default: the model's context, at most 1024).", low=2
    )
    stride: int | None = setting(None, "Perplexity stride (default: half the window).", low=1)
