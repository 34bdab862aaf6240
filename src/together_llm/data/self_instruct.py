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

Work survives interruption: `datasets/.self-instruct-<name>/` holds tasks.jsonl (kept tasks,
appended and flushed one by one) and state.json (which step and candidate come next and what
each filter dropped). Running the same command again resumes there; randomness is derived
from --seed, the step and the candidate, so a resumed run makes what an uninterrupted one
would. When --count tasks are kept, the dataset is written with its card and tasks.jsonl,
and the work folder is deleted: everything in it is then in the dataset.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import string
from pathlib import Path

import orjson

from ..errors import TllmError, check_name
from .self_instruct_prompts import (chat_row, classification_prompt, input_first_prompt,  # noqa: F401
                                   instruction_prompt, output_first_prompt, parse_input_first,
                                   parse_instructions, parse_is_classification, parse_output_first)
from .similarity import InstructionPool

SEEDS_FILE = Path(__file__).parent / "seeds" / "self_instruct_seeds.jsonl"
BLOCKED_WORDS = ("image", "images", "graph", "graphs", "picture", "pictures", "file", "files",
                 "map", "maps", "draw", "plot", "go to")
_BLOCKED = re.compile(r"\b(?:%s)\b" % "|".join(w.replace(" ", r"\s+") for w in BLOCKED_WORDS), re.I)
MIN_WORDS, MAX_WORDS = 3, 150  # instruction length bounds, as in the paper's code
MAX_INSTANCE_WORDS = 400  # input + output
SIMILARITY_LIMIT = 0.7
HUMAN_SHOWN, MACHINE_SHOWN = 6, 2  # in-context instructions per step
MAX_INSTANCES = 3
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
            line = line.removeprefix(b"\xef\xbb\xbf") if number == 1 else line  # a BOM
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
            isinstance(x, dict) and isinstance(x.get("input", ""), str)
            and isinstance(x.get("output"), str) and x["output"].strip() for x in instances):
        raise TllmError(f"{where}: 'instances' must be a list of objects with a string 'input' "
                        "and a non-empty string 'output'")
    return {"instruction": instruction.strip(), "is_classification": row.get("is_classification", False),
            "instances": [{"input": x.get("input", "").strip(), "output": x["output"].strip()}
                          for x in instances]}


# --- filters -----------------------------------------------------------------------------
def normalize(text: str) -> str:
    return " ".join(text.lower().split())


def instruction_problem(instruction: str, pool: InstructionPool, seen: set[str]) -> str | None:
    """Why a new instruction is dropped (a filter name), or None to keep it. `seen` holds
    the normalized text of every kept instruction, `pool` the same for ROUGE-L."""
    first = instruction[:1]
    if not first or first in string.punctuation or not first.isascii() or not first.isalnum():
        return "junk"
    words = len(instruction.split())
    if words < MIN_WORDS:
        return "too short"
    if words > MAX_WORDS:
        return "too long"
    if _BLOCKED.search(instruction):
        return "keyword"
    if normalize(instruction) in seen:
        return "duplicate"
    if pool.most_similar(instruction)[0] >= SIMILARITY_LIMIT:
        return "similar"
    return None


def instance_problem(instance: dict, earlier: list[dict], shown: frozenset = frozenset()) -> str | None:
    """Why an instance is dropped, or None; `earlier` are the task's instances kept so far,
    `shown` the normalized outputs of the seed examples (a weak teacher copies them)."""
    given, output = instance["input"], instance["output"]
    if not output.strip():
        return "empty output"
    if normalize(output) == normalize(given):
        return "output is input"
    if normalize(output) in shown and len(output.split()) > 3:  # short labels repeat rightly
        return "copied example"
    if any(normalize(given) == normalize(e["input"]) for e in earlier):
        return "duplicate instance"
    if len(given.split()) + len(output.split()) > MAX_INSTANCE_WORDS:
        return "instance too long"
    return None


# --- the teacher -------------------------------------------------------------------------
def open_teacher(home, teacher: str, teacher_model: str | None = None,
                 api_key: str | None = None):
    """(engine, description): `default` is the home's own model, an http(s) URL an
    OpenAI-compatible endpoint (it must serve /v1/completions), anything else a model
    registered in the home."""
    if re.match(r"https?://", teacher):
        from ..engine.remote_engine import RemoteEngine

        model = teacher_model
        if not model:
            listed = RemoteEngine(teacher, "", api_key).models()
            if not listed:
                raise TllmError(f"{teacher} lists no models; name one with --teacher-model")
            model = listed[0]
        return RemoteEngine(teacher, model, api_key), f"{model} at {teacher}"
    if teacher_model:
        raise TllmError("--teacher-model names the model of a URL teacher; for a local "
                        "model give its registered name as --teacher")
    from ..engine.select import open_engine

    engine = open_engine(home, home.load_config(), model=None if teacher == "default" else teacher)
    return engine, teacher if engine.model_name == teacher else f"{teacher} ({engine.model_name})"


class Teacher:
    """The three questions Self-Instruct asks its teacher, each from seeded randomness."""

    def __init__(self, engine, seeds: list[dict], seed: int):
        self.engine, self.seeds, self.seed = engine, seeds, seed
        self.shown = frozenset(normalize(x["output"]) for t in seeds for x in t["instances"])
        self.kinds = {flag: [t for t in seeds if t["is_classification"] == flag] for flag in (True, False)}

    def _ask(self, prompt: str, rng: random.Random, *, temperature: float, max_tokens: int,
             stop: list[str]) -> tuple[str, bool]:
        from ..engine.sampling import SamplingParams

        # A mild repetition penalty stops a small teacher looping ("no, no, no, ...") until
        # max_tokens; remote endpoints do not take it (OpenAI has no such field).
        params = SamplingParams(temperature=temperature, top_p=0.95, max_tokens=max_tokens,
                                stop=stop, seed=rng.randrange(2**32 - 1), repetition_penalty=1.1)
        completion = self.engine.complete(prompt, params).run()
        return completion.text, completion.finish_reason == "length"

    def instructions(self, step: int, machine: list[str]) -> list[str]:
        """New instructions: the teacher continues a list of six seed and two machine tasks."""
        rng = random.Random(f"{self.seed}:{step}")
        shown = rng.sample([t["instruction"] for t in self.seeds], min(HUMAN_SHOWN, len(self.seeds)))
        shown += rng.sample(machine, min(MACHINE_SHOWN, len(machine)))
        rng.shuffle(shown)
        text, cut = self._ask(instruction_prompt(shown), rng, temperature=0.9, max_tokens=128,
                              stop=["\n\n", f"Task {len(shown) + 8}"])
        return parse_instructions(text, cut)

    def make_task(self, instruction: str, step: int, position: int) -> tuple[dict, list[str]]:
        """The task with its instances, and the reasons instances were dropped."""
        rng = random.Random(f"{self.seed}:{step}:{position}")
        is_classification = self._is_classification(instruction, rng)
        with_instances = [t for t in self.kinds[is_classification] if t["instances"]]
        examples = rng.sample(with_instances, min(2 if is_classification else 3, len(with_instances)))
        prompt = (output_first_prompt if is_classification else input_first_prompt)(examples, instruction)
        text, cut = self._ask(prompt, rng, temperature=0.7, max_tokens=128, stop=["\nTask:", "\n\n"])
        found = (parse_output_first if is_classification else parse_input_first)(text)
        kept, dropped = [], []
        if cut and found:  # max_tokens ended it: the last instance is unfinished
            found.pop()
            dropped.append("cut off")
        for instance in found:
            problem = instance_problem(instance, kept, self.shown)
            if problem:
                dropped.append(problem)
            elif len(kept) < MAX_INSTANCES:
                kept.append(instance)
        task = {"instruction": instruction, "is_classification": is_classification, "instances": kept}
        return task, dropped

    def _is_classification(self, instruction: str, rng: random.Random) -> bool:
        yes, no = self.kinds[True], self.kinds[False]
        if not yes or not no:  # the seeds show one kind only: nothing to tell apart
            return bool(yes)
        examples = [(t["instruction"], True) for t in rng.sample(yes, min(4, len(yes)))]
        examples += [(t["instruction"], False) for t in rng.sample(no, min(4, len(no)))]
        rng.shuffle(examples)
        text, _ = self._ask(classification_prompt(examples, instruction), rng, temperature=0.0,
                            max_tokens=2, stop=["\n"])
        return parse_is_classification(text)


# --- the work folder ---------------------------------------------------------------------
class WorkFolder:
    """tasks.jsonl (kept tasks, appended and flushed one at a time) and state.json (where
    the run is and what was dropped). A task line written just before an interruption, whose
    state update never happened, is adopted on resume; a half-written line is cut off."""

    def __init__(self, folder: Path, settings: dict):
        self.folder, self.tasks_path = folder, folder / "tasks.jsonl"
        self.state_path = folder / "state.json"
        self.tasks: list[dict] = []
        fresh = {"settings": settings, "step": 0, "position": 0,
                 "dropped_instructions": {}, "dropped_instances": {}}
        if self.state_path.is_file():
            try:
                self.state = orjson.loads(self.state_path.read_bytes())
            except orjson.JSONDecodeError:
                raise TllmError(f"{self.state_path} is damaged; delete {folder} to start over") from None
            if self.state["settings"] != settings:
                old = self.state["settings"]
                changed = "; ".join("the seed file's content changed" if key == "seeds_sha256" else
                                    f"--{key.replace('_', '-')} was {old.get(key)}, now {value}"
                                    for key, value in settings.items() if old.get(key) != value)
                raise TllmError(f"{folder} holds an interrupted run with other settings ({changed}); "
                                "run it again as it was to resume, or delete that folder")
            self._load_tasks()
        else:
            folder.mkdir(parents=True, exist_ok=True)
            self.state = fresh
            self.tasks_path.write_bytes(b"")
            self.save()

    def _load_tasks(self) -> None:
        data = self.tasks_path.read_bytes() if self.tasks_path.is_file() else b""
        good = 0
        for line in data.splitlines(keepends=True):
            try:
                task = orjson.loads(line)
            except orjson.JSONDecodeError:
                break
            if not line.endswith(b"\n"):
                break
            good += len(line)
            self.tasks.append(task)
        if good < len(data):
            with open(self.tasks_path, "r+b") as f:
                f.truncate(good)
        last = self.tasks[-1] if self.tasks else None
        if last and (last["step"], last["position"]) >= (self.state["step"], self.state["position"]):
            self.state.update(step=last["step"], position=last["position"] + 1)
            self.count("instances", last["dropped"])
            self.save()

    def save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.state, option=orjson.OPT_INDENT_2))
        tmp.replace(self.state_path)

    def keep(self, task: dict, dropped: list[str]) -> None:
        """Append a kept task; its instance drops ride along, for adoption on resume."""
        task = {"step": self.state["step"], "position": self.state["position"], **task,
                "dropped": dropped}
        with open(self.tasks_path, "ab", buffering=0) as f:
            f.write(orjson.dumps(task) + b"\n")
            os.fsync(f.fileno())
        self.tasks.append(task)

    def count(self, level: str, reasons: list[str]) -> None:
        counts = self.state[f"dropped_{level}"]
        for reason in reasons:
            counts[reason] = counts.get(reason, 0) + 1

    def steps_without_progress(self) -> int:
        return self.state["step"] - (self.tasks[-1]["step"] + 1 if self.tasks else 0)


def describe_drops(counts: dict) -> str:
    """'similar 4, too short 2': what a filter level dropped, most first."""
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return ", ".join(f"{reason} {n}" for reason, n in ordered) or "nothing"


# --- the run -----------------------------------------------------------------------------
def self_instruct(home, name: str, count: int, *, seeds_path=None, teacher: str = "default",
                  teacher_model: str | None = None, api_key: str | None = None, seed: int = 0,
                  patience: int = DEFAULT_PATIENCE, report=None) -> dict:
    """Generate `count` tasks into dataset `name` (resuming an interrupted run); returns the
    card. `report(kept, count, state)` is called after each candidate instruction."""
    from .store import datasets_dir

    check_name(name, "dataset name")
    if count < 1 or patience < 1:
        raise TllmError("--count and --max-steps must be at least 1")
    if (datasets_dir(home) / name).exists():
        raise TllmError(f"dataset {name!r} already exists: choose another --name, or remove "
                        f"{datasets_dir(home) / name} first")
    seeds_file = Path(seeds_path).resolve() if seeds_path else SEEDS_FILE
    seeds = load_seeds(seeds_file)
    settings = {"teacher": teacher, "teacher_model": teacher_model, "seed": seed, "seeds": str(seeds_file),
                "seeds_sha256": hashlib.sha256(seeds_file.read_bytes()).hexdigest()}
    engine, described = open_teacher(home, teacher, teacher_model, api_key)
    try:
        work = WorkFolder(datasets_dir(home) / f".self-instruct-{name}", settings)
        _grow(work, Teacher(engine, seeds, seed), seeds, count, patience,
              report or (lambda kept, count, state: None))
    finally:
        engine.close()
    tasks, state = work.tasks[:count], work.state
    card = _write_dataset(home, name, tasks, {
        "teacher": described, "seeds": str(seeds_file), "seed_tasks": len(seeds), "seed": seed,
        "steps": state["step"] + 1, "tasks": len(tasks),
        "classification_tasks": sum(t["is_classification"] for t in tasks),
        "generated": len(work.tasks) + sum(state["dropped_instructions"].values()),
        "dropped_instructions": state["dropped_instructions"],
        "dropped_instances": state["dropped_instances"]})
    shutil.rmtree(work.folder, ignore_errors=True)
    return card


def _grow(work: WorkFolder, teacher: Teacher, seeds: list[dict], count: int, patience: int,
          report) -> None:
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
                "--teacher, or a higher --max-steps (the work so far is kept)")
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
    from .kinds import RowError, validate
    from .store import DatasetWriter

    with DatasetWriter(home, name, "chat", source=f"self-instruct by {details['teacher']}",
                       format="self-instruct") as out:
        with open(out.tmp / "tasks.jsonl", "wb") as side:
            for task in tasks:
                for instance in task["instances"]:
                    side.write(orjson.dumps({"instruction": task["instruction"], **instance,
                                             "is_classification": task["is_classification"]}) + b"\n")
                    try:
                        out.add(validate("chat", chat_row(task, instance)))
                    except RowError as exc:
                        out.reject(None, exc.reason, exc.detail, orjson.dumps(instance).decode())
        return out.commit({"self_instruct": details})
