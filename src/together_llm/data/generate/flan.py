"""FLAN-style instruction data: classification and seq2seq rows become chat rows through
the templates of a template set (`flan_templates.py` describes the files).

Each row gets a template picked by a seeded generator. Few-shot rows put the k exemplars
(drawn from other rows) inline, in the one user turn before the question, each rendered with
the same template and followed by its answer, separated by a `---` line. That is how FLAN
formats few-shot data, and it keeps the exemplars as context only: a multi-turn row would
also train on the exemplars' answers, once for every row they are drawn for.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

from ...errors import TllmError
from ..kinds import RowError, validate
from ..store import DatasetWriter, open_dataset
from .flan_templates import (
    ANSWER_BREAK,
    BUILTIN,
    EXEMPLAR_BREAK,
    FIELDS,
    MAX_OPTIONS,
    QUESTION,
    SHOT_STYLES,
    Task,
    Template,
    choose_task,
    load_template_sets,
)

# --- rendering -----------------------------------------------------------------------------


def options_text(options: list[str]) -> str:
    return "OPTIONS:\n" + "\n".join(f"- {o}" for o in options)


class Renderer:
    """Fills a task's templates with a row's fields, the options and the variables."""

    def __init__(self, task: Task, options: list[str] | None, variables: dict[str, str]):
        self.task = task
        self.options = options
        self.values = {**variables}
        if options is not None:
            self.values["options"] = options_text(options)

    def missing(self, template: Template, row: dict) -> str | None:
        """The first field `template` needs that `row` lacks."""
        return next((f for f in sorted(template.fields) if not row.get(f)), None)

    def render(self, template: Template, row: dict) -> tuple[str, str]:
        values = {**self.values, **{n: row.get(f) for n, f in FIELDS[self.task.kind].items()}}
        prompt = template.input.format_map(values).strip()
        if self.options is not None and not template.places_options:
            prompt += "\n\n" + self.values["options"]
        return prompt, template.output.format_map(values).strip()


def render_row(
    renderer: Renderer,
    template: Template,
    row: dict,
    exemplars: list[dict],
    style: str,
    system: str | None,
) -> dict:
    """One chat row: the question under `template`, after `exemplars` if few-shot."""
    prompt, answer = renderer.render(template, row)
    head = [{"role": "system", "content": system}] if system else []
    shots = [renderer.render(template, ex) for ex in exemplars]
    if style == "turns":
        turns = [
            m
            for q, a in shots
            for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})
        ]
        return {
            "messages": head
            + turns
            + [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        }
    text = EXEMPLAR_BREAK.join([q + ANSWER_BREAK + a for q, a in shots] + [prompt])
    return {
        "messages": head
        + [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
    }


# --- a dataset through the templates -------------------------------------------------------


def _checked_rows(dataset):
    """(line number, row as stored, row checked against the kind or its RowError)."""
    for number, row in dataset.numbered_rows():
        try:
            yield number, row, validate(dataset.kind, row)
        except RowError as exc:
            yield number, row, exc


def _survey(
    dataset, task: Task, options: list[str] | None, want_labels: bool, pool_size: int, seed: int
) -> tuple[list[str], list[tuple[int, dict]]]:
    """One pass: the dataset's labels, and a reservoir sample of rows fit to be exemplars
    (with their line numbers), bounded so memory stays flat for any dataset size."""
    rng = random.Random(f"pool:{seed}")
    labels: set[str] = set()
    pool: list[tuple[int, dict]] = []
    seen = 0
    for number, _, row in _checked_rows(dataset):
        if isinstance(row, RowError):
            continue
        if want_labels:
            labels.add(row["label"])
            if len(labels) > MAX_OPTIONS:
                raise TllmError(
                    f"dataset {dataset.name!r} has more than {MAX_OPTIONS} distinct labels: "
                    f"too many to list as options; give the ones to list with --options"
                )
        if (
            pool_size
            and all(row.get(f) for f in task.fields)
            and (options is None or row["label"] in options)
        ):
            seen += 1
            if len(pool) < pool_size:
                pool.append((number, row))
            elif (j := rng.randrange(seen)) < pool_size:
                pool[j] = (number, row)
    return sorted(labels), pool


def _exemplars(rng: random.Random, pool: list, k: int, number: int, row: dict, key: str):
    """k rows from the pool other than this one (by line, and by its question's text)."""

    def fits(entry):
        return entry[0] != number and entry[1][key] != row[key]

    picked = {}
    for _ in range(8 * k):  # cheap random draws first; a scan only when the pool is mostly clones
        i = rng.randrange(len(pool))
        if i not in picked and fits(pool[i]):
            picked[i] = pool[i][1]
            if len(picked) == k:
                return list(picked.values())
    rest = [i for i, entry in enumerate(pool) if i not in picked and fits(entry)]
    for i in rng.sample(rest, min(k - len(picked), len(rest))):
        picked[i] = pool[i][1]
    return list(picked.values()) if len(picked) == k else None


def flan(
    home,
    source: str,
    name: str,
    *,
    template_sets=(BUILTIN,),
    task: str | None = None,
    shots: int = 0,
    mix: float | None = None,
    seed: int = 0,
    options: list[str] | None = None,
    variables: dict[str, str] | None = None,
    shot_style: str = "inline",
    system: str | None = None,
    pool_size: int = 1000,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Write chat dataset `name` from classification/seq2seq dataset `source`; returns its card.
    `progress(n)` is called with the number of rows read so far."""
    dataset = open_dataset(home, source)
    DatasetWriter.check_free(home, name, overwrite)  # before reading the templates and rows
    if dataset.kind not in FIELDS:
        raise TllmError(
            f"dataset {source!r} is {dataset.kind} data: FLAN templates read "
            f"classification or seq2seq datasets"
        )
    spec = list(template_sets or (BUILTIN,))
    chosen = choose_task(load_template_sets(spec), dataset.kind, task)
    if shots < 0:
        raise TllmError("--shots must be 0 or more")
    if mix is None:
        mix = 1.0 if shots else 0.0
    elif not 0 <= mix <= 1:
        raise TllmError(f"--mix is the fraction of few-shot rows, between 0 and 1, not {mix}")
    elif mix and not shots:
        raise TllmError("--mix sets the share of few-shot rows: give --shots K as well")
    if shot_style not in SHOT_STYLES:
        raise TllmError(f"unknown few-shot style {shot_style!r}: choose {' or '.join(SHOT_STYLES)}")
    values = _variables(chosen, variables or {})
    if options is not None and not chosen.options:
        raise TllmError(
            f"task {chosen.name!r} lists no options; --options applies to tasks with options"
        )
    options = list(dict.fromkeys(o.strip() for o in options if o.strip())) if options else None

    want_labels = chosen.options and options is None
    labels: list[str] = []
    pool: list[tuple[int, dict]] = []
    if want_labels or shots:
        labels, pool = _survey(
            dataset, chosen, options, want_labels, pool_size if shots else 0, seed
        )
    if chosen.options and options is None:
        options = labels
    if shots and len(pool) <= shots:
        raise TllmError(
            f"{shots}-shot rows need at least {shots + 1} usable rows (found {len(pool)}"
            f"{'' if len(pool) < pool_size else ' in the pool; raise --pool'})"
        )
    renderer = Renderer(chosen, options, values)
    rng = random.Random(seed)
    per_template: Counter[str] = Counter()  # rows rendered with each template id
    first: list[str] = []  # the first rejection, for the error when none is rendered
    few_rows, done = 0, 0
    with DatasetWriter(
        home, name, "chat", source=f"dataset:{source}", format="flan", overwrite=overwrite
    ) as out:

        def reject(number, reason, detail, raw):
            out.reject(number, reason, detail, raw)
            first[:] = first or [f"line {number}: {reason}: {detail}"]

        for number, raw, row in _checked_rows(dataset):
            done += 1
            if progress and done % 1000 == 0:
                progress(done)
            if isinstance(row, RowError):
                reject(number, row.reason, row.detail, raw)
                continue
            template = rng.choice(chosen.templates)
            few = shots > 0 and rng.random() < mix
            lacking = renderer.missing(template, row)
            if lacking:
                reject(
                    number, "missing field", f"{lacking!r} is missing (template {template.id})", raw
                )
                continue
            if options is not None and row["label"] not in options:
                reject(
                    number, "bad label", f"label {row['label']!r} is not one of the options", raw
                )
                continue
            exemplars = (
                _exemplars(rng, pool, shots, number, row, QUESTION[chosen.kind]) if few else []
            )
            if exemplars is None:
                reject(number, "too few exemplars", f"fewer than {shots} other rows to show", raw)
                continue
            out.add(render_row(renderer, template, row, exemplars, shot_style, system))
            per_template[template.id] += 1
            few_rows += bool(exemplars)
        if progress:
            progress(done)
        if not out.rows:
            raise TllmError(
                f"no row of {source!r} could be rendered with task {chosen.name!r} "
                f"({first[0] if first else 'the dataset is empty'})"
            )
        return out.commit(
            extra={
                "flan_from": {
                    "name": dataset.name,
                    "fingerprint": dataset.card.get("fingerprint"),
                    "kind": dataset.kind,
                },
                "template_set": spec,
                "task": chosen.name,
                "template_files": chosen.files,
                "shots": shots,
                "mix": mix,
                "shot_style": shot_style,
                "seed": seed,
                "options": options,
                "variables": values,
                "system": system,
                "zero_shot_rows": out.rows - few_rows,
                "few_shot_rows": few_rows,
                "rows_per_template": {t.id: per_template[t.id] for t in chosen.templates},
            }
        )


def _variables(task: Task, given: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(given) - set(task.variables))
    if unknown:
        known = ", ".join(task.variables) or "none"
        raise TllmError(
            f"task {task.name!r} has no variable {', '.join(unknown)} (its variables: {known})"
        )
    values = {k: given.get(k, default) for k, default in task.variables.items()}
    missing = [k for k, v in values.items() if v is None or not str(v).strip()]
    if missing:
        raise TllmError(f"task {task.name!r} needs " + " ".join(f"--var {k}=..." for k in missing))
    return values
