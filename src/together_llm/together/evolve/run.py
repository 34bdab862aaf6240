"""`tllm together evolve`: a population of adapters of one base improves by merging, judged
by the home's own evaluation set.

Each generation makes K candidates, each a PEFT merge (adapters/merge.py) of two or three
members drawn at random, with a method taken in turn from svd, ties, dare_ties and linear
(the last three only for parents of one rank) and random weights, all from the seed and
the generation number; the pool's parents are the population, so later generations merge
earlier winners. Every candidate and member is scored on the evaluation rows
(score.py); the best `len(population)` of members and candidates go on (elitism: a
member survives until something beats it). After the last generation the best of the
population is the winner: a candidate is saved as adapters/<name>, its card holding its
whole lineage; an original member is simply named.

The base model and every adapter are loaded once, in one PEFT model, and candidates are
merged in memory; each candidate is also saved, with its card, in the run's scratch folder
(store.py) as soon as it is scored, so a resumed run reloads what was done instead
of merging and scoring it again.

Adoption (`adopt`): the winner becomes the assistant's active adapter only if it beats,
on the same rows, what the assistant uses now (its active adapters, or the base model when
none); the decision and its reason are in the results either way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...adapters.card import CARD_FILE, AdapterCard, Evolved
from ...adapters.merge import AVERAGING, SAME_RANK, USES_DENSITY, merged_card, plan_merge
from ...errors import RefusedError, TllmError, check_name
from ...models.load_hf import load_hf
from ...settings_kit import check_fields, setting
from . import store
from .adopt import decide_adoption
from .pool import AdapterPool
from .score import EvalRows, load_eval_rows, sort_key

MERGE_METHODS = ("svd", "ties", "dare_ties", "linear")
CANDIDATE_NAME = re.compile(r"^g\d+-c\d+$")
# Each parent's weight is drawn from this range; for the methods that sum their parents
# (svd, linear) the weights are then scaled to add up to 1, while ties and dare_ties, which
# average agreeing values themselves, take them as drawn (adapters/merge.py's defaults, varied).
WEIGHTS = (0.4, 1.2)
DENSITIES = (0.5, 0.9)  # the fraction of values ties and dare_ties keep


@dataclass
class EvolveSettings:
    """What `tllm together evolve` was asked (each field one of its options; stored with the
    run and reused on --resume)."""

    population: list[str] = setting(
        [], "The adapters to start from, comma-separated (LoRA, one base)."
    )
    eval: str = setting(
        "", "The home's dataset the adapters are scored on (its eval split when it has one)."
    )
    generations: int = setting(3, "How many generations to run.", low=1)
    candidates: int = setting(4, "Merged candidates made each generation.", low=1)
    metric: str = setting(
        "loss",
        "Fitness: loss (mean loss of the answer tokens, lower is better) or accuracy (share "
        "of chat answers the adapter writes exactly, greedily).",
        choices=("loss", "accuracy"),
    )
    seed: int = setting(0, "Seed of the choice of parents, methods and weights.")
    name: str | None = setting(None, "The winner's adapter name (default: the run id).")
    limit: int = setting(200, "Score on at most this many evaluation rows.", low=1)
    overwrite: bool = setting(False, "Replace an existing adapter named --name.")


@dataclass
class Spec:
    """One candidate to make: which members, merged how."""

    name: str
    parents: list[str]
    method: str
    weights: list[float]
    density: float | None
    seed: int


@dataclass
class Plan:
    settings: EvolveSettings
    run_id: str
    folder: Path
    evaluation: EvalRows
    merge: dict  # plan_merge's answer for the initial population
    results: dict = field(default_factory=dict)


def resume_settings(home, run_id: str, generations: int | None = None) -> EvolveSettings:
    """The settings run `run_id` was started with; `generations` extends (or shortens) it."""
    saved = store.read_results(store.run_folder(home, run_id, existing=True))["settings"]
    settings = EvolveSettings(**saved)
    if generations is not None:
        settings.generations = generations
    return settings


def plan_evolve(home, settings: EvolveSettings, resume: str | None = None) -> Plan:
    """Check everything that can be checked without loading a model."""
    check_fields(settings)
    odd = [n for n in settings.population if CANDIDATE_NAME.match(n)]
    if odd:
        raise RefusedError(
            f"adapter {odd[0]!r} has a name evolve gives its candidates (gN-cK); "
            "copy it under another name first"
        )
    run_id = resume or store.new_run_id(home)
    name = check_name(settings.name or run_id, "adapter name")
    folder = store.run_folder(home, run_id, existing=bool(resume))
    try:
        if name in settings.population:
            raise RefusedError(
                f"the winner cannot replace population member {name!r}; choose another --name"
            )
        ours = resume and _made_by(home, name, run_id)
        if (home.adapters_dir / name).exists() and not (settings.overwrite or ours):
            raise TllmError(
                f"an adapter named {name!r} already exists; choose another --name "
                "or add --overwrite"
            )
        # svd merges any ranks: if it is refused, the population cannot be merged at all.
        merge = plan_merge(home, settings.population, "svd", name, overwrite=True)
        evaluation = load_eval_rows(
            home, settings.eval, settings.metric, settings.limit, settings.seed
        )
    except TllmError:
        if not resume:
            shutil.rmtree(folder, ignore_errors=True)  # a refused run leaves nothing behind
        raise
    digest = _rows_digest(evaluation.rows)
    if resume:
        results = store.read_results(folder)
        if results["eval"].get("sha256") != digest:
            raise TllmError(
                f"dataset {evaluation.data!r} has changed since run {run_id} "
                "started, so new scores would not compare with its old ones; "
                "start a new run"
            )
        results["settings"] = dataclasses.asdict(settings)
    else:
        results = {
            "run_id": run_id,
            "settings": dataclasses.asdict(settings),
            "base": merge["base"].name,
            "eval": {
                "data": evaluation.data,
                "kind": evaluation.kind,
                "split": evaluation.split,
                "rows": len(evaluation.rows),
                "sha256": digest,
            },
            "population": list(settings.population),
            "scores": {},
            "generations": [],
        }
        store.write_results(folder, results)
    return Plan(settings, run_id, folder, evaluation, merge, results)


def _rows_digest(rows: list[dict]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode("utf-8")).hexdigest()


def _made_by(home, name: str, run_id: str) -> bool:
    """Whether adapter `name` is this run's winner from an earlier attempt."""

    try:
        evolve = AdapterCard.read(home.adapters_dir / name / CARD_FILE).evolve
    except (OSError, ValueError):
        return False
    return evolve is not None and evolve.run == run_id


def candidate_specs(
    seed: int, generation: int, population: list[str], ranks: dict, count: int
) -> list[Spec]:
    """The candidates of one generation; the same seed, generation and population always
    give the same ones (what makes a resumed run pick up where it stopped)."""
    rng = random.Random(f"{seed}:{generation}")
    start = rng.randrange(len(MERGE_METHODS))
    specs = []
    for k in range(1, count + 1):
        parents = rng.sample(population, rng.randint(2, min(3, len(population))))
        methods = [
            m for m in MERGE_METHODS if m not in SAME_RANK or len({ranks[p] for p in parents}) == 1
        ]
        method = methods[(start + k) % len(methods)]
        weights = [rng.uniform(*WEIGHTS) for _ in parents]
        if method not in AVERAGING:  # a weighted average, as merge's own default is
            weights = [w / sum(weights) for w in weights]
        weights = [round(w, 2) for w in weights]
        density = round(rng.uniform(*DENSITIES), 2) if method in USES_DENSITY else None
        specs.append(
            Spec(f"g{generation}-c{k}", parents, method, weights, density, rng.randrange(2**31))
        )
    return specs


def run_evolve(
    home,
    settings: EvolveSettings,
    resume: str | None = None,
    adopt: bool = False,
    progress: Callable[[int, int], None] | None = None,
    report: Callable[[str], None] = lambda message: None,
    on_generation: Callable[[dict], None] = lambda entry: None,
) -> dict:
    """Evolve as `settings` say (or continue run `resume`); return results.json's content.
    `progress(done, total)` hears the scoring work, `on_generation` each generation's table."""
    plan = plan_evolve(home, settings, resume)
    import torch

    results, folder, metric = plan.results, plan.folder, settings.metric
    scores = results["scores"]
    base = plan.merge["base"]
    if resume:
        report(f"resuming run {plan.run_id} after generation {len(results['generations'])}")
    report(f"loading base {base.name} and {len(results['population'])} adapters...")
    model, tokenizer = load_hf(base.hf_dir, plan.merge["task"], dtype=torch.float32)
    pool = AdapterPool(model, tokenizer, plan.evaluation, metric)
    for name in results["population"]:
        if name in settings.population:
            pool.load_home_adapter(home, name)
        else:  # a candidate that survived an earlier attempt's generations
            pool.load_candidate(folder, name)

    done_generations = len(results["generations"])
    todo = (
        sum(n not in scores for n in results["population"])
        + max(0, settings.generations - done_generations) * settings.candidates
        + int(adopt)
    )
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, todo)

    for name in results["population"]:
        if name not in scores:
            scores[name] = pool.score([name])
            store.write_results(folder, results)
            tick()

    for generation in range(done_generations + 1, settings.generations + 1):
        population = results["population"]
        ranks = {n: pool.rank(n) for n in population}
        specs = candidate_specs(settings.seed, generation, population, ranks, settings.candidates)
        for spec in specs:
            scores[spec.name] = _make_candidate(pool, plan, spec, generation)
            store.write_results(folder, results)
            tick()
        pool_names = population + [s.name for s in specs]
        # sorted() is stable and members come first: a candidate must do strictly better.
        ranked = sorted(pool_names, key=lambda n: sort_key(metric, scores[n]))
        survivors = ranked[: len(population)]
        pool.keep_only(survivors)
        entry = {
            "generation": generation,
            "survivors": survivors,
            "table": [_row(n, specs, scores[n], n in survivors) for n in ranked],
        }
        results["generations"].append(entry)
        results["population"] = survivors
        store.write_results(folder, results)
        on_generation(entry)

    winner = results["population"][0]
    is_candidate = winner not in settings.population
    name = settings.name or plan.run_id
    adopted_name = name if is_candidate else winner
    if adopt:
        tick()
    results["adoption"] = decide_adoption(
        home,
        pool,
        winner=winner,
        adopted_name=adopted_name,
        adopt=adopt,
        scores=scores,
        population=settings.population,
        merge=plan.merge,
        metric=metric,
    )
    card = pool.cards[winner]
    if is_candidate:
        card = dataclasses.replace(
            card,
            name=name,
            created=time.strftime("%Y-%m-%dT%H:%M:%S"),
            # every candidate's card has its evolve section (_make_candidate)
            evolve=dataclasses.replace(card.evolve or Evolved(), candidate=winner),
        )
        store.publish(home, store.candidate_folder(folder, winner), name, card)
    results["winner"] = {
        "candidate": winner,
        "scores": scores[winner],
        "adapter": name if is_candidate else winner,
        "saved": str(home.adapters_dir / name) if is_candidate else None,
        "card": card.to_dict(),
        "initial_best": min(settings.population, key=lambda n: sort_key(metric, scores[n])),
    }
    if results["adoption"]["adopted"]:
        config = home.load_config()
        config.adapters = [adopted_name]
        home.save_config(config)
    store.write_results(folder, results)
    return {**results, "run_dir": str(folder)}


def _make_candidate(pool: AdapterPool, plan: Plan, spec: Spec, generation: int) -> dict:
    """Merge and score candidate `spec` (or reload it, saved by an interrupted attempt);
    return its scores."""
    saved = store.read_candidate_card(plan.folder, spec.name)
    if (
        saved is not None
        and saved.evolve is not None  # as every card read_candidate_card gives has
        and saved.evolve.scores is not None
        and _recipe(saved) == (spec.parents, spec.method, spec.weights)
    ):
        pool.load(spec.name, store.candidate_folder(plan.folder, spec.name), saved)
        return saved.evolve.scores
    key = pool.merge(spec)
    scores = pool.score([spec.name])
    card = merged_card(
        plan.merge["base"].name,
        spec.parents,
        [pool.cards[p] for p in spec.parents],
        spec.method,
        spec.weights,
        spec.density,
        spec.seed,
        pool.model.peft_config[key].r,
    )
    card = dataclasses.replace(
        card,
        name=spec.name,
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        provenance="evolved",
        evolve=Evolved(
            run=plan.run_id,
            generation=generation,
            data=plan.settings.eval,
            metric=plan.settings.metric,
            scores=scores,
        ),
    )
    pool.cards[spec.name] = card
    store.save_candidate(pool.model, key, plan.folder, spec.name, card)
    return scores


def _recipe(card: AdapterCard) -> tuple:
    """(parents, method, weights) of a saved candidate's card."""
    return (
        [p.name for p in card.parents or []],
        card.merge.method if card.merge else None,
        card.merge.weights if card.merge else None,
    )


def _row(name: str, specs: list[Spec], scores: dict, kept: bool) -> dict:
    spec = next((s for s in specs if s.name == name), None)
    return {
        "adapter": name,
        "candidate": spec is not None,
        "kept": kept,
        "scores": scores,
        "parents": spec.parents if spec else None,
        "method": spec.method if spec else None,
        "weights": spec.weights if spec else None,
        "density": spec.density if spec else None,
    }
