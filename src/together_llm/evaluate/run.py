"""One evaluation run (`tllm eval`): a model or adapter (the subject), and for the report its
base model beside it, measured on the same rows of one dataset, in `runs/<id>/`:

    config.yaml     what was asked and what it resolved to (subject, base, judge, rows)
    metrics.json    every figure, per side, plus the judge's pairwise counts
    answers.jsonl   the generated answers, with their references and grades
    report.md, report.html, plots/*.png     with --report (report.py)

Which metrics apply to which dataset kind is `METRICS`; everything that can be refused (an
unknown metric, one the kind does not support, a missing adapter, model or judge, scoring
log-likelihoods on a remote endpoint) is refused before any model loads. Every side answers
greedily with the same settings, on the transformers engine (a remote endpoint as itself),
so the two columns differ only by the model.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..adapters.store import adapter_dir, list_adapters, read_card
from ..data.store import open_dataset
from ..engine.choice import open_engine
from ..engine.protocol import Engine
from ..errors import NAME_PATTERN, RefusedError, TllmError
from ..home import new_run_id
from ..models.registry import get_model, list_models
from ..settings_kit import check_fields
from ..train.run import runs_dir
from .arena import HOME_PREFIX, canonical_name, open_named_engine
from .generate import generate_answers, prompt_of, reference_of
from .judge import EngineJudge
from .report import write_report
from .robustness import perturb_rows
from .scores import choice_scores, generation_scores, judge_answers, perplexity_scores
from .settings import EvalSettings

GENERATED = ("chat", "seq2seq")
# metric name -> the dataset kinds it applies to, in the order `--metrics` lists them
METRICS = {
    "ppl": ("text", "chat"),
    "rouge": GENERATED,
    "bleu": GENERATED,
    "chrf": GENERATED,
    "em": GENERATED,
    "f1": GENERATED,
    "mc": ("choice",),
    "judge": GENERATED,
}
PERTURBATIONS = ("typos", "casing", "whitespace")  # robustness.py, all applied to each prompt


@dataclass(frozen=True)
class Side:
    """One model evaluated: a registered model with zero or more adapters."""

    label: str
    model: str
    adapters: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"label": self.label, "model": self.model, "adapters": list(self.adapters)}


@dataclass
class Plan:
    """A checked evaluation: nothing in it needs a model loaded."""

    settings: EvalSettings
    kind: str
    split: str | None
    rows: list[dict]
    metrics: list[str]
    subject: Side
    base: Side | None
    judge: str | None
    perturbed: list[dict] | None = field(default=None)


def check_metrics(names, kind: str, dataset: str) -> list[str]:
    """The metrics to run on a `kind` dataset: the ones named (a list or "a,b"), refused when
    unknown or not applicable; by default every applicable one except the judge."""
    if names is None:
        return [m for m, kinds in METRICS.items() if kind in kinds and m != "judge"]
    names = [
        n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()
    ]
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise TllmError(
            f"unknown metric {', '.join(unknown) or '(none given)'}: choose from "
            f"{', '.join(METRICS)}"
        )
    for name in names:
        if kind not in METRICS[name]:
            fits = [m for m, kinds in METRICS.items() if kind in kinds]
            raise RefusedError(
                f"metric {name} applies to {' and '.join(METRICS[name])} datasets; "
                f"dataset {dataset!r} is {kind} (its metrics: {', '.join(fits)})"
            )
    return list(dict.fromkeys(names))


def plan_eval(home, settings: EvalSettings) -> Plan:
    """Check the request against the home and read the rows; loads no model."""

    if settings.adapter and settings.model:
        raise TllmError(
            "give --adapter or --model, not both: an adapter runs on the base "
            "model it was trained on"
        )
    check_fields(settings)
    dataset = open_dataset(home, settings.data)
    metrics = check_metrics(settings.metrics, dataset.kind, dataset.name)
    subject, base = _sides(home, settings)
    if not (settings.report or "judge" in metrics):
        base = None  # the base is measured for the report, and for the judge's comparison
    needs_weights = [m for m in metrics if m in ("ppl", "mc")]
    for side in filter(None, (subject, base)):
        if needs_weights and get_model(home, side.model).kind == "remote":
            raise RefusedError(
                f"{' and '.join(needs_weights)} read the model's token probabilities; "
                f"{side.model!r} is a remote endpoint, which does not report them "
                "(generated answers can be measured: rouge, bleu, chrf, em, f1, "
                "judge on chat or seq2seq data)"
            )
    judge = None
    if "judge" in metrics:
        judge = settings.judge or home.load_config().model
        _check_judge(home, judge)
    split = "eval" if dataset.has_splits else None
    rows = sample_rows(dataset.rows(split), settings.limit, settings.seed)
    if not rows:
        raise TllmError(f"dataset {dataset.name!r} has no rows to evaluate")
    accuracy = {"rouge", "em", "f1", "mc"} & set(metrics)
    perturbed = None
    if settings.report and accuracy:
        perturbed = perturb_rows(rows, PERTURBATIONS, settings.seed)
    return Plan(settings, dataset.kind, split, rows, metrics, subject, base, judge, perturbed)


def _sides(home, settings: EvalSettings) -> tuple[Side, Side | None]:
    """(subject, base to set beside it or None): an adapter on the base it was trained on;
    a model against the home's model; by default the home's assistant (its model and active
    adapters) against its model alone."""

    config = home.load_config()
    if settings.adapter:
        adapter_dir(home, settings.adapter)  # refuses an unknown or pickled adapter now
        model = read_card(home, settings.adapter).base or config.model
        get_model(home, model)
        return Side(settings.adapter, model, (settings.adapter,)), Side(model, model)
    if settings.model:
        get_model(home, settings.model)
        base = Side(config.model, config.model) if settings.model != config.model else None
        return Side(settings.model, settings.model), base
    get_model(home, config.model)
    if not config.adapters:
        return Side(config.model, config.model), None
    for name in config.adapters:
        adapter_dir(home, name)
    subject = Side("+".join(config.adapters), config.model, tuple(config.adapters))
    return subject, Side(config.model, config.model)


def _check_judge(home, name: str) -> None:
    """Refuse a judge name that resolves to nothing, as the arena resolves it, loading nothing."""

    if name.startswith(HOME_PREFIX):
        path = Path(canonical_name(name)[len(HOME_PREFIX) :])
        while not (path / "assistant.yaml").is_file() and ":" in path.name:
            path = path.with_name(path.name.rpartition(":")[0])  # home:PATH:ADAPTER
        if not (path / "assistant.yaml").is_file():
            raise TllmError(f"judge {name!r}: {path} is not a home (it has no assistant.yaml)")
        return
    known = set(list_adapters(home)) | {entry.name for entry in list_models(home)}
    if name not in known:
        models = ", ".join(entry.name for entry in list_models(home))
        raise TllmError(
            f"unknown judge {name!r}: name a model ({models}), "
            "an adapter of this home, or home:PATH for another home's assistant"
        )


def sample_rows(rows, limit: int, seed: int) -> list[dict]:
    """At most `limit` rows drawn evenly from the stream (reservoir sampling, seeded), in
    their dataset order; every row when there are no more than `limit`."""
    rng, kept = random.Random(seed), []
    for i, row in enumerate(rows):
        if i < limit:
            kept.append((i, row))
        else:
            j = rng.randint(0, i)
            if j < limit:
                kept[j] = (i, row)
    return [row for _, row in sorted(kept, key=lambda pair: pair[0])]


# --------------------------------------------------------------------------- running


def run_eval(
    home,
    settings: EvalSettings,
    judge=None,
    progress: Callable[[int, int], None] | None = None,
    report: Callable[[str], None] = lambda message: None,
) -> dict:
    """Evaluate as `settings` say; return metrics.json's content. `judge`: an object with
    `complete(messages) -> str` used instead of opening the named judge (tests, scripts).
    `progress(done, total)` hears the units of work (rows scored, answers generated, judge
    verdicts) finished so far."""
    plan = plan_eval(home, settings)
    sides = [plan.subject] + ([plan.base] if plan.base else [])
    ticker = _Ticker(_total(plan, len(sides)), progress)
    engines: list[Engine] = []  # the judge's, closed at the end
    try:
        if plan.judge is not None and judge is None:  # plan.judge is set when "judge" is asked
            judge = _open_judge(home, plan.judge, engines, report)
        results, answers = {}, {}
        for role, side in zip(("subject", "base"), sides):
            report(f"evaluating {side.label} on {len(plan.rows)} rows of {settings.data}...")
            engine = _open_side(home, side, report)
            try:
                results[role], answers[role] = score_side(engine, plan, ticker)
            finally:
                engine.close()
        judged = None
        if "judge" in plan.metrics:
            judged = judge_answers(plan, judge, answers, results, ticker.add)
    finally:
        for engine in engines:
            engine.close()
    return _write(home, plan, sides, results, answers, judged)


def _total(plan: Plan, sides: int) -> int:
    n, generated = (
        len(plan.rows),
        bool({"rouge", "bleu", "chrf", "em", "f1", "judge"} & set(plan.metrics)),
    )
    per_side = n * (("ppl" in plan.metrics) + generated + ("mc" in plan.metrics))
    if plan.perturbed is not None:
        robust_generated = generated and bool({"rouge", "em", "f1"} & set(plan.metrics))
        per_side += n * (("mc" in plan.metrics) + robust_generated)
    judged = n * (sides + (sides == 2)) if "judge" in plan.metrics else 0
    return per_side * sides + judged


class _Ticker:
    def __init__(self, total: int, progress):
        self.total, self.done, self.progress = total, 0, progress

    def add(self, count: int = 1) -> None:
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.total)


def _open_side(home, side: Side, report):
    """The engine of one side: transformers for local models (the token probabilities ppl
    and mc need, and the same backend for both sides), the endpoint for a remote one."""

    config = dataclasses.replace(home.load_config(), adapters=list(side.adapters))
    remote = get_model(home, side.model).kind == "remote"
    return open_engine(
        home, config, model=side.model, engine=None if remote else "transformers", report=report
    )


def _open_judge(home, name: str, engines: list, report):
    engine, _ = open_named_engine(home, name, report)
    engines.append(engine)
    return EngineJudge(engine, name=name)


def score_side(engine, plan: Plan, ticker: _Ticker) -> tuple[dict, list[str] | None]:
    """(flat scores, the generated answers or None) of one engine on the plan's rows."""

    scores: dict = {}
    if "ppl" in plan.metrics:
        scores.update(perplexity_scores(engine, plan.rows, plan.kind, plan.settings))
        ticker.add(len(plan.rows))
    if "mc" in plan.metrics:
        scores.update(choice_scores(engine, plan.rows, plan.perturbed, ticker.add))
    texts = None
    if {"rouge", "bleu", "chrf", "em", "f1", "judge"} & set(plan.metrics):
        prompts = [prompt_of(plan.kind, row) for row in plan.rows]
        references = [reference_of(plan.kind, row) for row in plan.rows]
        start = ticker.done
        answers = generate_answers(
            engine,
            prompts,
            plan.settings.max_tokens,
            lambda done: ticker.add(start + done - ticker.done),
        )
        texts = answers.texts
        perturbed = None
        if plan.perturbed is not None and {"rouge", "em", "f1"} & set(plan.metrics):
            start = ticker.done
            perturbed = generate_answers(
                engine,
                [prompt_of(plan.kind, row) for row in plan.perturbed],
                plan.settings.max_tokens,
                lambda done: ticker.add(start + done - ticker.done),
            ).texts
        scores.update(generation_scores(texts, references, plan.metrics, perturbed))
        scores["tokens_per_s"] = answers.tokens_per_s
        scores["generated_tokens"] = answers.tokens
        scores["prompts_too_long"] = answers.too_long
    return scores, texts


# --------------------------------------------------------------------------- the run folder


def _write(
    home, plan: Plan, sides: list[Side], results: dict, answers: dict, judged: dict | None
) -> dict:
    settings = plan.settings
    run_dir = _new_run_dir(runs_dir(home), plan.subject.label)
    base = sides[1] if len(sides) > 1 else None
    config = {
        **dataclasses.asdict(settings),
        "kind": plan.kind,
        "split": plan.split,
        "rows": len(plan.rows),
        "metrics": plan.metrics,
        "subject": plan.subject.to_dict(),
        "base": base.to_dict() if base else None,
        "judge": judged["name"] if judged else None,
        "perturbations": list(PERTURBATIONS) if plan.perturbed is not None else None,
    }
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    if answers.get("subject") is not None:
        _write_answers(run_dir / "answers.jsonl", plan, answers, judged)
    metrics = {
        "run_id": run_dir.name,
        "data": settings.data,
        "kind": plan.kind,
        "split": plan.split,
        "rows": len(plan.rows),
        "metrics": plan.metrics,
        "subject": plan.subject.to_dict(),
        "base": base.to_dict() if base else None,
        "results": {"subject": results["subject"], "base": results.get("base")},
        "judge": (
            {"name": judged["name"], "pairwise": judged["pairwise"], "stats": judged["stats"]}
            if judged
            else None
        ),
        "robustness": (
            "each item's lower score of its original and its perturbed prompt "
            f"({', '.join(PERTURBATIONS)}), averaged: HELM's worst case"
            if plan.perturbed is not None
            else None
        ),
    }
    if settings.report:
        metrics["report"] = {k: str(v) for k, v in write_report(run_dir, metrics).items()}
    (run_dir / "metrics.json").write_text(
        json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    metrics["run_dir"] = str(run_dir)
    return metrics


def _write_answers(path: Path, plan: Plan, answers: dict, judged: dict | None) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for i, row in enumerate(plan.rows):
            record = {
                "prompt": prompt_of(plan.kind, row),
                "reference": reference_of(plan.kind, row),
            }
            for role, texts in answers.items():
                record[role] = texts[i]
                if judged:
                    record[f"{role}_grade"] = judged["grades"][role][i]
            if judged and judged["verdicts"]:
                record["pairwise"] = judged["verdicts"][i]["outcome"]
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def _new_run_dir(root: Path, label: str) -> Path:
    label = label if NAME_PATTERN.match(label) else "assistant"
    path = root / new_run_id(root, f"eval-{label}")
    path.mkdir(parents=True)
    return path
