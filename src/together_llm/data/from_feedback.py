"""The home's feedback as training data: thumbs up/down become a KTO dataset, A/B choices a
DPO dataset, corrections an SFT (chat) dataset.

The feedback log (data/feedback.py) is written by the web chat and `POST /v1/feedback`. Each line is checked with the canonical schema
of its kind: a prompt may open with a system message and must end with the user's turn the
answer replied to. A line that fails goes to the new dataset's rejected.jsonl with its line
number in the feedback file and the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from ..errors import TllmError
from .feedback import CHOICES, CORRECTIONS, RATINGS
from .kinds import RowError, validate
from .store import DatasetWriter, check_dataset_name, fingerprint_file, numbered_lines

HOW_TO_COLLECT = (
    "rate answers with the thumbs in the web chat (`tllm serve`, then open /), "
    "use Regenerate there and pick the better answer, edit an answer into the one you "
    "wanted, or POST /v1/feedback"
)


def _as_stored(line: dict) -> dict:
    return line


def _corrected(line: dict) -> dict:
    """A correction as a chat row: the conversation, then the answer the person wanted."""
    prompt = line.get("prompt")
    wanted = {"role": "assistant", "content": line.get("correction")}
    return {"messages": [*prompt, wanted] if isinstance(prompt, list) else prompt}


@dataclass(frozen=True)
class Output:
    """One dataset this command writes, from one feedback file."""

    file: str  # in feedback/
    kind: str
    suffix: str  # the dataset is named NAME-suffix
    what: str  # how a user would call its rows
    how: str  # how to collect them
    row: Callable[[dict], dict] = field(default=_as_stored)  # a stored line as a row of `kind`


OUTPUTS = (
    Output(
        RATINGS,
        "feedback",
        "kto",
        "thumbs up/down ratings",
        'rate answers with the thumbs in the web chat or POST /v1/feedback with type "rating"',
    ),
    Output(
        CHOICES,
        "preference",
        "dpo",
        "A/B choices",
        "use Regenerate in the web chat and pick the better answer, or POST "
        '/v1/feedback with type "preference"',
    ),
    Output(
        CORRECTIONS,
        "chat",
        "sft",
        "corrections",
        "edit an answer in the web chat into the one you wanted, or POST /v1/feedback with "
        'type "correction"',
        _corrected,
    ),
)


def from_feedback(
    home, name: str, *, overwrite: bool = False, say: Callable[[str], None] = lambda message: None
) -> list[dict]:
    """Write NAME-kto (feedback kind), NAME-dpo (preference kind) and NAME-sft (chat kind) from
    the home's feedback; returns the cards written. `say` receives notes: skipped datasets, one-sided KTO data."""
    check_dataset_name(name)
    folder = home.feedback_dir
    present = {
        out.file: next(numbered_lines(folder / out.file), None) is not None for out in OUTPUTS
    }
    if not any(present.values()):
        raise TllmError(
            f"no feedback yet in {folder} ({RATINGS}, {CHOICES} and {CORRECTIONS} are "
            f"missing or empty): {HOW_TO_COLLECT}"
        )
    todo = []
    for out in OUTPUTS:
        if not present[out.file]:
            say(
                f"skipped {name}-{out.suffix}: no {out.what} in {folder / out.file}; to collect "
                f"some, {out.how}"
            )
            continue
        DatasetWriter.check_free(home, f"{name}-{out.suffix}", overwrite)  # before writing either
        todo.append(out)

    cards = [card for out in todo if (card := _write(home, name, folder, out, overwrite, say))]
    if not cards:
        raise TllmError(
            f"no usable feedback in {folder}: every line was rejected "
            f"(reasons above); {HOW_TO_COLLECT}"
        )
    return cards


def _write(home, name: str, folder, out: Output, overwrite: bool, say) -> dict | None:
    """One dataset from one feedback file, or None (nothing written) when no line is usable."""
    source = folder / out.file
    labels: Counter[bool] = Counter()  # a feedback row's label: was the answer good
    models: Counter[str] = Counter()
    with DatasetWriter(
        home,
        f"{name}-{out.suffix}",
        out.kind,
        source=str(source),
        format="tllm-feedback",
        overwrite=overwrite,
    ) as writer:
        problems: list[str] = []
        lines = 0
        for number, raw in numbered_lines(source):
            lines += 1
            try:
                stored = orjson.loads(raw)
                row = validate(out.kind, out.row(stored) if isinstance(stored, dict) else stored)
            except orjson.JSONDecodeError as exc:
                writer.reject(number, "bad json", str(exc), raw)
                if len(problems) < 10:
                    problems.append(f"{out.file} line {number}: bad json")
                continue
            except RowError as exc:
                writer.reject(number, exc.reason, exc.detail, raw)
                if len(problems) < 10:
                    problems.append(f"{out.file} line {number}: {exc.reason}: {exc.detail}")
                continue
            writer.add(row)
            models[str(stored.get("model") or "unknown")] += 1
            if out.kind == "feedback":
                labels[row["label"]] += 1
        if not writer.rows:
            for problem in problems:
                say(problem)
            say(f"skipped {writer.name}: none of the {lines} lines of {source} is usable")
            return None
        extra = {
            "from_feedback": {
                "file": str(source),
                "fingerprint": fingerprint_file(source),
                "lines": lines,
            },
            "models": dict(models.most_common()),
        }
        if out.kind == "feedback":
            extra.update(_balance(writer.name, labels[True], labels[False], say))
        return writer.commit(extra=extra)


def _balance(dataset: str, liked: int, disliked: int, say) -> dict:
    """KTO learns from both desirable and undesirable answers (TRL's KTOTrainer wants
    both): count each side and warn when one is missing."""
    warnings = []
    if not liked or not disliked:
        have, lack = ("thumbs up", "thumbs down") if liked else ("thumbs down", "thumbs up")
        warnings.append(
            f"{dataset}: every rating is {have}; KTO training needs some {lack} "
            f"answers too, so rate a few of those before training"
        )
        say("warning: " + warnings[-1])
    return {
        "liked": liked,
        "disliked": disliked,
        "liked_ratio": round(liked / (liked + disliked), 4),
        "warnings": warnings,
    }
