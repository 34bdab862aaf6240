"""Training an improve round's candidate: sft on the mix's rows, then the preference stages
(preferences.py), each going on from the one before, with the settings that teach a small
dataset (train/auto_recipe.py).

    sft   learn-<adapter>       the mix (mix.py), NEW/REPLAY/GENERAL_COPIES times each
    dpo   learn-<adapter>-dpo   the new choices, corrections among them
    kto   learn-<adapter>-kto   the new ratings

The last stage writes <adapter>.candidate; earlier ones <adapter>.candidate-<stage>, kept
until the round ends so `--resume` can go on with a later stage after an interruption.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from ..data.store import DatasetWriter
from ..home import Home
from ..models.load_hf import read_config
from ..train.auto_recipe import step
from ..train.model import resolve_base
from ..train.recipe import load_recipe
from ..train.run import train_record
from ..train.run_folder import has_interrupted_run
from .mix import Mix
from .preferences import Preferences

# The mix is trained for PASSES epochs, the new rows in it NEW_COPIES times and the
# replayed ones REPLAY_COPIES times: a new row is seen 9 times (what a small dataset needs,
# train/auto_recipe.py), a replayed one 6 (it is known, and must hold against the new rows'
# pull), a general one 3 (the base's own answers, which the model still gives). About half
# the steps of 9 passes over everything.
NEW_COPIES = 3
REPLAY_COPIES = 2
GENERAL_COPIES = 1
PASSES = 3
# A round from the base trains its sft stage at FRESH_STEP times the step a plain small
# dataset gets (train/auto_recipe.step). The mix carries the base's own answers to everyday
# questions, which hold those answers where they were (the plain step guards them for a
# dataset without that anchor), and the larger step sets the round's facts firmly enough to
# keep them through later rounds: with the plain step from the base, the second round lost
# one of the first round's three held-out questions (67%, twice running; the gate refused
# it). A round going on from a version takes the plain step.
FRESH_STEP = 2.0


@dataclass(frozen=True)
class Plan:
    adapter: str  # the assistant's adapter (me)
    start_from: str | None  # the adapter the first stage goes on from; None: the base
    stages: list[str]  # sft when there are rows, then dpo, kto
    resume: bool = False
    seed: int = 42

    @property
    def candidate(self) -> str:
        return f"{self.adapter}.candidate"

    def output(self, stage: str) -> str:
        return self.candidate if stage == self.stages[-1] else f"{self.candidate}-{stage}"

    def outputs(self) -> list[str]:
        return [self.output(stage) for stage in self.stages]


def train_candidate(
    home: Home,
    plan: Plan,
    mix: Mix,
    preferences: Preferences,
    system_prompt: str,
    report,
    show_progress: bool,
) -> None:
    start = plan.start_from
    for stage in plan.stages:
        name = _write_data(home, plan.adapter, stage, mix, preferences, system_prompt)
        out = plan.output(stage)
        done = out != plan.candidate and (home.adapters_dir / out).is_dir()
        # --resume goes on with the stage that was interrupted; later ones start afresh
        resume = plan.resume and has_interrupted_run(home, out)
        if plan.resume and done and not resume:
            report(f"{stage} stage already done ({out}): going on")
        else:
            report(_what(stage, mix, preferences) + f" from {start or 'the base'}")
            recipe = load_recipe(
                None,
                {
                    "data": name,
                    "stage": stage,
                    "method": "lora",
                    "name": out,
                    "overwrite": True,
                    "resume": resume or None,
                    "start_from": start,
                    "seed": plan.seed,
                    "epochs": PASSES,
                    **({"lr": _fresh_step(home)} if stage == "sft" and start is None else {}),
                },
            )
            train_record(home, recipe, report, show_progress)
        start = out


def _fresh_step(home: Home) -> float:
    _, hf_dir = resolve_base(home, None, report=lambda message: None)
    return FRESH_STEP * step(read_config(hf_dir))[0]


def remove_candidates(home: Home, plan: Plan) -> None:
    for name in plan.outputs():
        shutil.rmtree(home.adapters_dir / name, ignore_errors=True)


def _what(stage: str, mix: Mix, preferences: Preferences) -> str:
    if stage == "dpo":
        return f"dpo on {len(preferences.pairs)} choices"
    if stage == "kto":
        return f"kto on {len(preferences.ratings)} ratings"
    return (
        f"training a candidate on {len(mix.rows)} rows ({len(mix.new)} new, "
        f"{len(mix.replay)} replayed, {len(mix.general)} general)"
    )


def _write_data(
    home: Home, adapter: str, stage: str, mix: Mix, preferences: Preferences, system_prompt: str
) -> str:
    """The stage's dataset, written again each round; returns its name."""
    name = f"learn-{adapter}" if stage == "sft" else f"learn-{adapter}-{stage}"
    kind = {"sft": "chat", "dpo": "preference", "kto": "feedback"}[stage]
    with DatasetWriter(home, name, kind, source="tllm improve", format=kind, overwrite=True) as out:
        if stage == "sft":
            copies = mix.new * NEW_COPIES + mix.replay * REPLAY_COPIES
            for row in copies + mix.general * GENERAL_COPIES:
                out.add(row.chat(system_prompt))
        for example in {"dpo": preferences.pairs, "kto": preferences.ratings}.get(stage, []):
            out.add(example)
        out.commit()
    return name
