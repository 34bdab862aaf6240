"""Template sets for `tllm data flan`: loading and checking the YAML files.

A template set is a folder of YAML files, one task each (the built-in one is
`data/templates/flan/`; a user's folder or single file works the same way):

    task: sentiment
    kind: classification        # the dataset kind it reads: classification or seq2seq
    options: true               # list the allowed answers (the FLAN "options suffix")
    variables:                  # names the rows do not carry, given with --var NAME=VALUE
      target_language: null     # null: required; a string: the default
    templates:
      - input: "{text}\\n\\nHow does the writer feel?"   # the user's turn
        output: "{label}"                             # the answer pattern

Placeholders a template may use: the row's fields (`{text}` `{label}` for classification;
`{source}` `{target}` `{context}` for seq2seq, with `{question}` and `{answer}` as other
names for source and target), `{options}`, and the file's variables. Write `{{` and `}}`
for literal braces. Where a task has options and a template does not place `{options}`, the
list is appended after a blank line. Tasks with the same name in several sets (`--template-set
flan --template-set mine/`) pool their phrasings, which is how a user adds to a built-in task.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from ...errors import TllmError

BUILTIN = "flan"
SHOT_STYLES = ("inline", "turns")
# placeholder -> row field, per dataset kind
FIELDS = {
    "classification": {"text": "text", "label": "label"},
    "seq2seq": {
        "source": "source",
        "question": "source",
        "context": "context",
        "target": "target",
        "answer": "target",
    },
}
ANSWER = {"classification": "label", "seq2seq": "target"}  # the field an answer pattern shows
QUESTION = {"classification": "text", "seq2seq": "source"}  # the field every prompt shows
FILE_KEYS = ("task", "kind", "options", "variables", "templates", "description")
MAX_OPTIONS = 50  # more distinct labels than this is not a choice a prompt can list
# an exemplar's answer follows its question after a blank line; a rule separates exemplars,
# so a multi-line question or answer never runs into the next one
ANSWER_BREAK, EXEMPLAR_BREAK = "\n\n", "\n\n---\n\n"


@dataclass
class Template:
    id: str  # "sentiment.yaml#3": where to find it
    input: str
    output: str
    fields: frozenset  # the row fields it reads
    places_options: bool  # writes {options} itself (else the list is appended)


@dataclass
class Task:
    name: str
    kind: str
    options: bool
    variables: dict = field(default_factory=dict)  # name -> default (None: required)
    templates: list = field(default_factory=list)
    files: list = field(default_factory=list)

    @property
    def fields(self) -> frozenset:
        """Row fields some template reads: a few-shot exemplar must have them all."""
        return frozenset().union(*(t.fields for t in self.templates))


# --- loading -------------------------------------------------------------------------------


def builtin_folder() -> Path:
    return Path(str(resources.files("together_llm.data") / "templates" / "flan"))


def load_template_sets(specs) -> dict[str, Task]:
    """The tasks of one or more template sets: `flan`, a folder of YAML files, or a file."""
    tasks: dict[str, Task] = {}
    for spec in specs or (BUILTIN,):
        for path in _set_files(spec):
            _merge(tasks, load_template_file(path))
    return tasks


def _set_files(spec: str) -> list[Path]:
    if spec == BUILTIN:
        return sorted(builtin_folder().glob("*.yaml"))
    path = Path(spec).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        if not files:
            raise TllmError(f"template set {spec!r} has no .yaml files")
        return files
    raise TllmError(
        f"no template set {spec!r}: use {BUILTIN!r} (the built-in set), a folder of "
        f"YAML template files, or one YAML file"
    )


def _merge(tasks: dict, task: Task) -> None:
    old = tasks.get(task.name)
    if old is None:
        tasks[task.name] = task
        return
    if (old.kind, old.options) != (task.kind, task.options):
        raise TllmError(
            f"{task.files[0]}: task {task.name!r} is already defined in {old.files[0]} "
            f"with kind {old.kind} and options {str(old.options).lower()}; "
            f"to add phrasings to it, use the same kind and options"
        )
    for name, default in task.variables.items():
        old.variables.setdefault(name, default)
    old.templates += task.templates
    old.files += task.files


def load_template_file(path: Path) -> Task:
    """One task file, checked: every problem names the file and what to change."""

    def fail(problem: str):
        raise TllmError(f"template file {path}: {problem}")

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        fail(f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot be read: {exc}")
    if not isinstance(data, dict):
        fail("must be a mapping with task, kind and templates")
    if unknown := sorted(set(data) - set(FILE_KEYS)):
        fail(f"unknown key(s) {', '.join(map(repr, unknown))}: the keys are {', '.join(FILE_KEYS)}")
    name = data.get("task")
    if not isinstance(name, str) or not name.strip():
        fail("'task' (the task's name) is missing")
    kind = data.get("kind")
    if kind not in FIELDS:
        fail(f"'kind' must be one of {', '.join(FIELDS)} (the dataset kind it reads), not {kind!r}")
    options = data.get("options", False)
    if not isinstance(options, bool) or (options and kind != "classification"):
        fail(
            f"'options' must be false, or true for kind classification (the options listed are "
            f"the dataset's labels), not {options!r}"
        )
    variables = data.get("variables") or {}
    if not isinstance(variables, dict) or not all(
        isinstance(v, (str, type(None))) for v in variables.values()
    ):
        fail("'variables' must map names to a default text, or to null when required")
    if clash := sorted(set(variables) & (set(FIELDS[kind]) | {"options"})):
        fail(f"variable(s) {', '.join(clash)} would hide a row field")
    entries = data.get("templates")
    if not isinstance(entries, list) or not entries:
        fail("'templates' must be a non-empty list of {input, output} entries")
    allowed = set(FIELDS[kind]) | set(variables) | ({"options"} if options else set())
    task = Task(name.strip(), kind, options, dict(variables), files=[str(path)])
    for i, entry in enumerate(entries):
        where = f"template {i + 1}"
        if not isinstance(entry, dict):
            fail(f"{where} must be a mapping with 'input' and 'output'")
        if set(entry) - {"input", "output"}:
            fail(f"{where} has unknown key(s) {sorted(set(entry) - {'input', 'output'})}")
        names = {}
        for key, what in (("input", "input pattern"), ("output", "answer pattern")):
            if isinstance(entry.get(key), dict):  # YAML reads an unquoted {text} as a mapping
                fail(f"{where} {key} starts with '{{': put the pattern in quotes or use a | block")
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                fail(f"{where} has no '{key}' ({what})")
            names[key] = _placeholders(
                entry[key], lambda p, where=where, key=key: fail(f"{where} {key}: {p}")
            )
            if bad := sorted(names[key] - allowed):
                fail(
                    f"{where} {key}: unknown placeholder(s) {', '.join('{' + b + '}' for b in bad)}; "
                    f"this task can use {', '.join('{' + a + '}' for a in sorted(allowed))} "
                    f"(declare other names under 'variables')"
                )
        row_fields = {
            FIELDS[kind][n]: n for n in names["input"] | names["output"] if n in FIELDS[kind]
        }
        if ANSWER[kind] not in {FIELDS[kind].get(n) for n in names["output"]}:
            fail(
                f"{where} output must show the answer ({' or '.join(_names_of(kind, ANSWER[kind]))})"
            )
        if QUESTION[kind] not in {FIELDS[kind].get(n) for n in names["input"]}:
            fail(
                f"{where} input must show the row ({' or '.join(_names_of(kind, QUESTION[kind]))})"
            )
        task.templates.append(
            Template(
                f"{path.name}#{i + 1}",
                entry["input"],
                entry["output"],
                frozenset(row_fields),
                "options" in names["input"],
            )
        )
    return task


def _names_of(kind: str, row_field: str) -> list[str]:
    return ["{" + n + "}" for n, f in FIELDS[kind].items() if f == row_field]


def _placeholders(pattern: str, fail: Callable) -> set[str]:
    try:
        parts = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        fail(f"{exc} (write {{{{ and }}}} for literal braces)")
    names = set()
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            fail(
                f"{pattern!r} has a placeholder that is not a plain {{name}} (no !conversion, "
                f":format or attribute)"
            )
        names.add(name)
    return names


def choose_task(tasks: dict[str, Task], kind: str, name: str | None) -> Task:
    """The task named, or the only one that reads datasets of `kind`."""
    if name is not None:
        if name not in tasks:
            raise TllmError(
                f"no task {name!r} in the template set (tasks: {', '.join(sorted(tasks))})"
            )
        if tasks[name].kind != kind:
            raise TllmError(f"task {name!r} reads {tasks[name].kind} datasets, not {kind}")
        return tasks[name]
    fitting = sorted(t for t, task in tasks.items() if task.kind == kind)
    if not fitting:
        raise TllmError(f"the template set has no task for {kind} datasets")
    if len(fitting) > 1:
        raise TllmError(
            f"choose the task with --task: {', '.join(fitting)} all read {kind} datasets"
        )
    return tasks[fitting[0]]
