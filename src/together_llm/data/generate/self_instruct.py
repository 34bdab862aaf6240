"""Self-Instruct (Wang et al., 2022): grow instruction data from a few human-written tasks,
with a teacher model writing the new ones.

Each step shows the teacher a numbered list of tasks (six human seeds and, once there are
some, two machine-written ones) and lets it continue the list. Every new instruction then
goes through the paper's filters (junk, length, words a text model cannot serve, exact
duplicates, ROUGE-L >= 0.7 against any instruction kept so far); the teacher decides from
examples whether it is a classification task, and writes instances for it: the class labels
first and an input for each (output-first) for classification, the input first and then the
output otherwise. Instances with an empty output, an output equal to the input, a repeated
input or too much text are dropped, and so is a task left with none. Each kept task becomes
one chat row per instance (user: instruction and input; assistant: output).

Work survives interruption: `datasets/.self-instruct-<name>/` (work.py) keeps
the tasks kept so far and where the run is. Running the same command again resumes there;
randomness is derived from --seed, the step and the candidate, so a resumed run makes what
an uninterrupted one would. When --count tasks are kept, the dataset is written with its
card and tasks.jsonl, and the work folder is deleted: everything in it is then in the
dataset. The filters live in filters.py, the teacher (which model, its
questions) in teacher.py, its prompts in prompts.py.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import orjson

from ...errors import TllmError
from ..importing.sources import BOM
from ..kinds import RowError, validate
from ..store import DatasetWriter, datasets_dir
from .filters import describe_drops, instruction_problem, normalize
from .prompts import chat_row
from .similarity import InstructionPool
from .teacher import Teacher, open_teacher, teacher_identity, teacher_label
from .work import WorkFolder

SEEDS_FILE = Path(__file__).parents[1] / "seeds" / "self_instruct_seeds.jsonl"  # in data/
DEFAULT_PATIENCE = 10  # steps in a row without a new task before giving up


# --- seed tasks --------------------------------------------------------------------------
def load_seeds(path: Path | str | None = None) -> list[dict]:
    """Seed tasks, one JSON object a line: {"instruction": str, "instances": [{"input": str,
    "output": str}, ...] (optional), "is_classification": bool (optional, default false)}."""
    path = Path(path) if path else SEEDS_FILE
    if not path.is_file():
        raise TllmError(f"seed file {path} does not exist")
    tasks = []
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            line = line.removeprefix(BOM) if number == 1 else line
            if line.strip():
                tasks.append(_seed_task(line, f"{path}:{number}"))
    if len(tasks) < 2:
        raise TllmError(f"{path} holds {len(tasks)} seed task(s); Self-Instruct needs at least 2")
    return tasks


def _seed_task(line: bytes, where: str) -> dict:
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise TllmError(f"{where}: not valid JSON ({exc})") from None
    instruction = row.get("instruction") if isinstance(row, dict) else None
    if not isinstance(instruction, str) or not instruction.strip():
        raise TllmError(f"{where}: a seed task must be an object with a non-empty 'instruction'")
    if not isinstance(row.get("is_classification", False), bool):
        raise TllmError(f"{where}: 'is_classification' must be true or false")
    instances = row.get("instances", [])
    if not isinstance(instances, list) or not all(
        isinstance(x, dict)
        and isinstance(x.get("input", ""), str)
        and isinstance(x.get("output"), str)
        and x["output"].strip()
        for x in instances
    ):
        raise TllmError(
            f"{where}: 'instances' must be a list of objects with a string 'input' "
            "and a non-empty string 'output'"
        )
    return {
        "instruction": instruction.strip(),
        "is_classification": row.get("is_classification", False),
        "instances": [
            {"input": x.get("input", "").strip(), "output": x["output"].strip()} for x in instances
        ],
    }


# --- the run -----------------------------------------------------------------------------
def self_instruct(
    home,
    name: str,
    count: int,
    *,
    seeds_path=None,
    teacher: str = "default",
    teacher_model: str | None = None,
    api_key: str | None = None,
    seed: int = 0,
    patience: int = DEFAULT_PATIENCE,
    report=None,
) -> dict:
    """Generate `count` tasks into dataset `name` (resuming an interrupted run); returns the
    card. `report(kept, count, state)` is called after each candidate instruction."""

    if count < 1 or patience < 1:
        raise TllmError("--count and --max-steps must be at least 1")
    DatasetWriter.check_free(home, name, can_overwrite=False)  # before any model is loaded
    seeds_file = Path(seeds_path).resolve() if seeds_path else SEEDS_FILE
    seeds = load_seeds(seeds_file)
    identity = teacher_identity(home, teacher, teacher_model, api_key)
    settings = {
        "teacher": identity,
        "seed": seed,
        "seeds": str(seeds_file),
        "seeds_sha256": hashlib.sha256(seeds_file.read_bytes()).hexdigest(),
    }
    with WorkFolder(datasets_dir(home) / f".self-instruct-{name}", settings) as work:
        try:
            DatasetWriter.check_free(home, name, can_overwrite=False)
        except TllmError:  # a run that held the lock wrote it meanwhile: this folder is left over
            shutil.rmtree(work.folder, ignore_errors=True)
            raise
        work.load()
        engine = open_teacher(home, teacher, identity, api_key)
        try:
            _grow(
                work,
                Teacher(engine, seeds, seed),
                seeds,
                count,
                patience,
                report or (lambda kept, count, state: None),
            )
        finally:
            engine.close()
        tasks, state = work.tasks[:count], work.state
        card = _write_dataset(
            home,
            name,
            tasks,
            {
                "teacher": teacher_label(teacher, identity),
                "teacher_identity": identity,
                "seeds": str(seeds_file),
                "seed_tasks": len(seeds),
                "seed": seed,
                "steps": state["step"] + 1,
                "tasks": len(tasks),
                "classification_tasks": sum(t["is_classification"] for t in tasks),
                "generated": len(work.tasks) + sum(state["dropped_instructions"].values()),
                "dropped_instructions": state["dropped_instructions"],
                "dropped_instances": state["dropped_instances"],
            },
        )
        shutil.rmtree(work.folder, ignore_errors=True)  # still locked: no one else is in it
    return card


def _grow(
    work: WorkFolder, teacher: Teacher, seeds: list[dict], count: int, patience: int, report
) -> None:
    """Run steps until `count` tasks are kept, saving the state after every candidate."""
    pool = InstructionPool([t["instruction"] for t in seeds + work.tasks])
    seen = {normalize(text) for text in pool.texts}
    state = work.state
    report(len(work.tasks), count, state)
    while len(work.tasks) < count:
        if work.steps_without_progress() >= patience:
            raise TllmError(
                f"self-instruct gave up after {patience} step{'s' * (patience != 1)} in a row "
                f"without a new task ({len(work.tasks)} of {count} kept); the filters dropped instructions: "
                f"{describe_drops(state['dropped_instructions'])}; instances: "
                f"{describe_drops(state['dropped_instances'])}. Try another --seed, a stronger "
                "--teacher, or a higher --max-steps (the work so far is kept)"
            )
        step = state["step"]
        # Only tasks from earlier steps are shown, so a step resumed halfway sees what it saw.
        earlier = [t["instruction"] for t in work.tasks if t["step"] < step]
        candidates = teacher.instructions(step, earlier)
        while state["position"] < len(candidates) and len(work.tasks) < count:
            instruction = candidates[state["position"]]
            problem = instruction_problem(instruction, pool, seen)
            if problem is None:
                task, dropped = teacher.make_task(instruction, step, state["position"])
                if task["instances"]:
                    work.keep(task, dropped)
                    pool.add(instruction)
                    seen.add(normalize(instruction))
                else:
                    problem = "no valid instance"
                work.count("instances", dropped)
            if problem:
                work.count("instructions", [problem])
            state["position"] += 1
            work.save()
            report(len(work.tasks), count, state)
        if len(work.tasks) < count:
            state.update(step=step + 1, position=0)
            work.save()


def _write_dataset(home, name: str, tasks: list[dict], details: dict) -> dict:
    """data.jsonl (one chat row per instance), tasks.jsonl (the same instances with their
    instruction, alpaca-style: `tllm data import` reads it) and the card."""

    with DatasetWriter(
        home, name, "chat", source=f"self-instruct by {details['teacher']}", format="self-instruct"
    ) as out:
        with open(out.tmp / "tasks.jsonl", "wb") as side:
            for task in tasks:
                for instance in task["instances"]:
                    side.write(
                        orjson.dumps(
                            {
                                "instruction": task["instruction"],
                                **instance,
                                "is_classification": task["is_classification"],
                            }
                        )
                        + b"\n"
                    )
                    try:
                        out.add(validate("chat", chat_row(task, instance)))
                    except RowError as exc:
                        out.reject(None, exc.reason, exc.detail, orjson.dumps(instance).decode())
        return out.commit({"self_instruct": details})
