"""Self-Instruct's teacher: which model it is, opening it, and the three questions the
pipeline asks it (new instructions, classification or not, instances).

A teacher is resolved once into an identity that a resume can compare: a local model by its
registered name and files (a GGUF file's path and size; an HF directory's fingerprint and
weight size), with any adapters assistant.yaml applies; an endpoint by its URL and the
model it serves. `--teacher default` thus records which model "default" was, and resuming
after the home's model changed is refused instead of mixing two teachers in one dataset.
URLs are stored without user:password and query (where credentials hide); the API key is
never stored.
"""

from __future__ import annotations

import random
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ...engine.choice import open_engine
from ...engine.remote_engine import RemoteEngine
from ...errors import TllmError
from ...models.fingerprint import fingerprint
from ...models.registry import get_model
from ...sampling import SamplingParams
from .filters import instance_problem, normalize
from .prompts import (
    classification_prompt,
    input_first_prompt,
    instruction_prompt,
    output_first_prompt,
    parse_input_first,
    parse_instructions,
    parse_is_classification,
    parse_output_first,
)

HUMAN_SHOWN, MACHINE_SHOWN = 6, 2  # in-context instructions per step
MAX_INSTANCES = 3
WEIGHTS = ("*.safetensors", "*.bin", "*.pt")


def public_url(url: str) -> str:
    """`url` safe to write into a card or state file: no user:password@, query or fragment."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", "")).rstrip("/")


def is_url(teacher: str) -> bool:
    return re.match(r"https?://", teacher) is not None


def teacher_identity(
    home, teacher: str, teacher_model: str | None = None, api_key: str | None = None
) -> dict:
    """What `--teacher` (and `--teacher-model`) stand for now; see the module docstring.
    A URL teacher without --teacher-model is asked for its models (the first is used)."""
    if is_url(teacher):
        model = teacher_model
        if not model:
            listed = RemoteEngine(teacher, "", api_key).models()
            if not listed:
                raise TllmError(
                    f"{public_url(teacher)} lists no models; name one with --teacher-model"
                )
            model = listed[0]
        return {"url": public_url(teacher), "remote_model": model}
    if teacher_model:
        raise TllmError(
            "--teacher-model names the model of a URL teacher; for a local "
            "model give its registered name as --teacher"
        )

    config = home.load_config()
    entry = get_model(home, config.model if teacher == "default" else teacher)
    if entry.kind == "remote":
        return {
            "model": entry.name,
            "url": public_url(entry.source),
            "remote_model": entry.options["model"],
        }
    identity: dict[str, Any] = {"model": entry.name}
    if entry.gguf_path is not None:
        identity.update(gguf=str(entry.gguf_path), gguf_bytes=entry.gguf_path.stat().st_size)
    else:
        hf_dir = entry.hf_dir
        if hf_dir is None:  # a hub model whose folder lost its files
            raise TllmError(
                f"model {entry.name!r} has no config.json in {entry.local_dir}: "
                "its downloaded files are missing"
            )
        weights = {p for pattern in WEIGHTS for p in hf_dir.glob(pattern)}
        identity.update(
            hf_dir=str(hf_dir),
            fingerprint=fingerprint(hf_dir),
            weight_bytes=sum(p.stat().st_size for p in weights),
        )
    if config.adapters:
        identity["adapters"] = list(config.adapters)
    return identity


def teacher_label(teacher: str, identity: dict) -> str:
    """The teacher as the card names it: the model, and where --teacher pointed."""
    if "url" in identity and "model" not in identity:
        return f"{identity['remote_model']} at {identity['url']}"
    return teacher if identity["model"] == teacher else f"{teacher} ({identity['model']})"


def open_teacher(home, teacher: str, identity: dict, api_key: str | None = None):
    """The engine for a resolved teacher (`teacher` is --teacher as given: a URL keeps the
    credentials `identity` leaves out)."""
    if is_url(teacher):
        return RemoteEngine(teacher, identity["remote_model"], api_key)

    return open_engine(home, home.load_config(), model=identity["model"])


class Teacher:
    """The three questions Self-Instruct asks its teacher, each from seeded randomness."""

    def __init__(self, engine, seeds: list[dict], seed: int):
        self.engine, self.seeds, self.seed = engine, seeds, seed
        self.shown = frozenset(normalize(x["output"]) for t in seeds for x in t["instances"])
        self.kinds = {
            flag: [t for t in seeds if t["is_classification"] == flag] for flag in (True, False)
        }

    def _ask(
        self,
        prompt: str,
        rng: random.Random,
        *,
        temperature: float,
        max_tokens: int,
        stop: list[str],
    ) -> tuple[str, bool]:

        # A mild repetition penalty stops a small teacher looping ("no, no, no, ...") until
        # max_tokens; remote endpoints do not take it (OpenAI has no such field).
        params = SamplingParams(
            temperature=temperature,
            top_p=0.95,
            max_tokens=max_tokens,
            stop=stop,
            seed=rng.randrange(2**32 - 1),
            repetition_penalty=1.1,
        )
        completion = self.engine.complete(prompt, params).run()
        return completion.text, completion.finish_reason == "length"

    def instructions(self, step: int, machine: list[str]) -> list[str]:
        """New instructions: the teacher continues a list of six seed and two machine tasks."""
        rng = random.Random(f"{self.seed}:{step}")
        shown = rng.sample(
            [t["instruction"] for t in self.seeds], min(HUMAN_SHOWN, len(self.seeds))
        )
        shown += rng.sample(machine, min(MACHINE_SHOWN, len(machine)))
        rng.shuffle(shown)
        text, cut = self._ask(
            instruction_prompt(shown),
            rng,
            temperature=0.9,
            max_tokens=128,
            stop=["\n\n", f"Task {len(shown) + 8}"],
        )
        return parse_instructions(text, cut)

    def make_task(self, instruction: str, step: int, position: int) -> tuple[dict, list[str]]:
        """The task with its instances, and the reasons instances were dropped."""
        rng = random.Random(f"{self.seed}:{step}:{position}")
        is_classification = self._is_classification(instruction, rng)
        with_instances = [t for t in self.kinds[is_classification] if t["instances"]]
        examples = rng.sample(
            with_instances, min(2 if is_classification else 3, len(with_instances))
        )
        prompt = (output_first_prompt if is_classification else input_first_prompt)(
            examples, instruction
        )
        text, cut = self._ask(
            prompt, rng, temperature=0.7, max_tokens=128, stop=["\nTask:", "\n\n"]
        )
        found = (parse_output_first if is_classification else parse_input_first)(text)
        kept: list[dict] = []
        dropped: list[str] = []  # why each dropped instance was
        if cut and found:  # max_tokens ended it: the last instance is unfinished
            found.pop()
            dropped.append("cut off")
        for instance in found:
            problem = instance_problem(instance, kept, self.shown)
            if problem:
                dropped.append(problem)
            elif len(kept) < MAX_INSTANCES:
                kept.append(instance)
        task = {
            "instruction": instruction,
            "is_classification": is_classification,
            "instances": kept,
        }
        return task, dropped

    def _is_classification(self, instruction: str, rng: random.Random) -> bool:
        yes, no = self.kinds[True], self.kinds[False]
        if not yes or not no:  # the seeds show one kind only: nothing to tell apart
            return bool(yes)
        examples = [(t["instruction"], True) for t in rng.sample(yes, min(4, len(yes)))]
        examples += [(t["instruction"], False) for t in rng.sample(no, min(4, len(no)))]
        rng.shuffle(examples)
        text, _ = self._ask(
            classification_prompt(examples, instruction),
            rng,
            temperature=0.0,
            max_tokens=2,
            stop=["\n"],
        )
        return parse_is_classification(text)
