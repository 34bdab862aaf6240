"""`tllm data clean`: repair, filter and deduplicate a dataset into a new one.

The rules run in this fixed order on every row (a rule that is off is skipped). A rule that
removes a row writes it to rejected.jsonl with the rule's name as the reason, so the card's
`removed_by_rule` and `rejected_by_reason` use the same names:

  rule                    does     detail of a removed row, e.g.
  fix unicode             rewrites (mojibake and broken characters, ftfy)
  normalize whitespace    rewrites (newlines, runs of spaces, blank lines, ends)
  invalid after cleaning  removes  identical answers: 'chosen' and 'rejected' are the same
  min chars               removes  12 characters < 20
  max chars               removes  4012 characters > 4000
  drop pattern            removes  matches '(?i)as an ai'
  keep pattern            removes  matches none of 'capital', 'boils'
  min tokens              removes  5 tokens < 8
  max tokens              removes  1100 tokens > 1024
  language                removes  detected fr, wanted en   (or: no language detected)
  duplicate               removes  same as line 3
  near duplicate          removes  like line 3, similarity 0.86

Rewriting comes first so every later rule sees the repaired text (a rewrite can leave a row
its kind does not allow: "invalid after cleaning"); cheap filters come before expensive ones
(tokenizing, language detection) so those see fewer rows; deduplication (dedup.py) comes
last so that a row removed by a filter never "claims" a text and takes a good row down with
it. "The row's text" is `kinds.text_of` (every text field joined); rewriting touches every
text field. Nothing is dropped silently: each removed row goes to the new dataset's
rejected.jsonl with its line in the source dataset, and the card counts what each rule
removed and changed. One streaming pass; only deduplication keeps state.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass

from ..errors import TllmError
from ..models.token_count import token_counter
from ..settings_kit import check_fields, setting
from .dedup import Deduplicator
from .kinds import RowError, text_of, validate
from .store import DatasetWriter, open_dataset

REWRITES = ("fix unicode", "normalize whitespace")
FILTERS = (
    "min chars",
    "max chars",
    "drop pattern",
    "keep pattern",
    "min tokens",
    "max tokens",
    "language",
    "duplicate",
    "near duplicate",
)
INVALID = "invalid after cleaning"  # a rewrite left a row its kind does not allow


@dataclass
class CleanSettings:
    """What `tllm data clean` does (each field one of its options); recorded as is in the new
    dataset's card."""

    fix_unicode: bool = setting(True, "Repair mojibake and broken characters.")
    normalize_whitespace: bool = setting(True, "Tidy spaces, blank lines and newlines.")
    min_chars: int | None = setting(None, "Remove rows with fewer characters.", low=0)
    max_chars: int | None = setting(None, "Remove rows with more characters.", low=0)
    drop: list[str] = setting(
        [],
        "Remove rows whose text matches (repeatable; (?i) for any case).",
        metavar="REGEX",
        multiple=True,
    )
    keep: list[str] = setting(
        [],
        "Keep only rows whose text matches at least one (repeatable).",
        metavar="REGEX",
        multiple=True,
    )
    min_tokens: int | None = setting(
        None, "Remove rows with fewer tokens (base model's tokenizer).", low=0
    )
    max_tokens: int | None = setting(
        None, "Remove rows with more tokens (base model's tokenizer).", low=0
    )
    tokenizer: str | None = setting(
        None,
        "Count tokens with this model's tokenizer (default: assistant.yaml's model).",
        metavar="MODEL",
    )
    lang: list[str] = setting(
        [],
        "Keep only rows detected as these languages (en, fr, de, zh...; repeatable).",
        metavar="CODE[,CODE]",
        multiple=True,
    )
    dedup: bool = setting(False, "Remove exact and near duplicates (first occurrence kept).")
    near_dup: bool = setting(True, "With --dedup: near duplicates too, not only exact ones.")
    near_dup_threshold: float = setting(
        0.8,
        "Estimated Jaccard similarity (character 5-grams) from which a row is a near duplicate.",
        above=0,
        high=1,
    )
    num_perm: int = setting(128, "MinHash permutations: more is more exact and slower.", low=16)

    def check(self) -> CleanSettings:
        """Every value against its field, then the bounds that depend on each other."""
        check_fields(self)
        # "--lang en,fr" and "--lang en --lang fr" say the same
        self.lang = [
            code.strip() for value in self.lang for code in value.split(",") if code.strip()
        ]
        for low, high, unit in (
            (self.min_chars, self.max_chars, "chars"),
            (self.min_tokens, self.max_tokens, "tokens"),
        ):
            if low is not None and high is not None and low > high:
                raise TllmError(
                    f"--min-{unit} {low} is larger than --max-{unit} {high}: no row could pass"
                )
        return self


# --- rewriting -------------------------------------------------------------------------------


def fix_unicode(text: str) -> str:
    """Repair mojibake ("cafÃ©" -> "café"), broken surrogates and stray control characters.

    Only repairs: quotes stay curly, full-width punctuation (Chinese "，") stays full-width,
    and HTML entities stay as written (the text may be about HTML)."""
    import ftfy

    return ftfy.fix_text(
        text, uncurl_quotes=False, fix_character_width=False, unescape_html=False, explain=False
    )


_NEWLINES = re.compile(r"\r\n|[\r\u2028\u2029\x85]")
_SPACES = re.compile(r"[^\S\n]+")  # any whitespace but a newline: tabs, NBSP, ...
_BLANK_LINES = re.compile(r"\n{3,}")


def normalize_whitespace(text: str) -> str:
    """One kind of newline, no trailing spaces, runs of spaces inside a line made one, at
    most one blank line in a row, nothing at either end. Single newlines and each line's
    leading indentation stay: code and lists need them."""
    lines = []
    for line in _NEWLINES.sub("\n", text).split("\n"):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        lines.append(indent + _SPACES.sub(" ", line[len(indent) :]).rstrip())
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def rewrite(kind: str, row: dict, fix: Callable[[str], str]) -> dict:
    """The row with `fix` applied to every text field (the label of a classification row and
    the choices of a choice row included; a feedback row's boolean label is not text)."""

    def turns(messages):
        return [{"role": m["role"], "content": fix(m["content"])} for m in messages]

    if kind == "chat":
        return {"messages": turns(row["messages"])}
    if kind in ("preference", "feedback"):
        answers = ("chosen", "rejected") if kind == "preference" else ("completion",)
        return {
            "prompt": turns(row["prompt"]),
            **{k: fix(row[k]) for k in answers},
            **({"label": row["label"]} if kind == "feedback" else {}),
        }
    if kind == "choice":  # a text answer is one of the choices: fixed the same way
        return {
            "question": fix(row["question"]),
            "choices": [fix(c) for c in row["choices"]],
            "answer": fix(row["answer"]) if isinstance(row["answer"], str) else row["answer"],
        }
    return {k: fix(v) if isinstance(v, str) else v for k, v in row.items()}


# --- measuring -------------------------------------------------------------------------------


def language_detector(wanted: list[str]) -> Callable[[str], str | None]:
    """A check that a text is in one of the `wanted` languages (ISO codes as langdetect
    names them: en, fr, de, zh-cn...; "zh" accepts both zh-cn and zh-tw)."""

    from langdetect import DetectorFactory, detect
    from langdetect.detector_factory import PROFILES_DIRECTORY
    from langdetect.lang_detect_exception import LangDetectException

    known = set(os.listdir(PROFILES_DIRECTORY))
    known |= {code.split("-")[0] for code in known}
    wanted = [code.strip().lower() for code in wanted if code.strip()]
    for code in wanted:
        if code not in known:
            raise TllmError(
                f"unknown language code {code!r} for --lang: use codes like en, fr, de, zh"
            )
    DetectorFactory.seed = 0  # langdetect samples at random; a seed makes reruns agree

    def check(text: str) -> str | None:
        """None for a wanted language, else why not."""
        try:
            found = detect(text)
        except LangDetectException:
            return f"no language detected, wanted {', '.join(wanted)}"
        if found in wanted or found.split("-")[0] in wanted:
            return None
        return f"detected {found}, wanted {', '.join(wanted)}"

    return check


# --- the pipeline ----------------------------------------------------------------------------


class Cleaner:
    """The rules of one `CleanSettings`, applied to one row at a time."""

    def __init__(self, home, kind: str, settings: CleanSettings):
        settings.check()
        self.kind, self.settings = kind, settings
        self.drop = [_compile(p, "--drop") for p in settings.drop]
        self.keep = [_compile(p, "--keep") for p in settings.keep]
        needs_tokens = settings.min_tokens is not None or settings.max_tokens is not None
        self.count_tokens: Callable[[str], int] | None = (
            token_counter(home, settings.tokenizer) if needs_tokens else None
        )
        self.language = language_detector(settings.lang) if settings.lang else None
        self.dedup = (
            Deduplicator(settings.near_dup, settings.near_dup_threshold, settings.num_perm)
            if settings.dedup
            else None
        )
        self.modified: Counter[str] = Counter({name: 0 for name in self.rewrites()})
        self.removed: Counter[str] = Counter({name: 0 for name in self.filters()})

    def rewrites(self) -> list[str]:
        s = self.settings
        return [name for name, on in zip(REWRITES, (s.fix_unicode, s.normalize_whitespace)) if on]

    def filters(self) -> list[str]:
        s = self.settings
        on = (
            s.min_chars is not None,
            s.max_chars is not None,
            bool(s.drop),
            bool(s.keep),
            s.min_tokens is not None,
            s.max_tokens is not None,
            bool(s.lang),
            s.dedup,
            s.dedup and s.near_dup,
        )
        return [name for name, active in zip(FILTERS, on) if active]

    def clean(self, line: int, row: dict) -> tuple[dict, tuple[str, str] | None]:
        """(the row, possibly rewritten; None if it stays, else (rule, detail)): the rule that
        removed it is the reason rejected.jsonl gives."""
        changed = False
        for name, fix in (
            ("fix unicode", fix_unicode),
            ("normalize whitespace", normalize_whitespace),
        ):
            if name in self.modified:
                new = rewrite(self.kind, row, fix)
                if new != row:
                    self.modified[name] += 1
                    row, changed = new, True
        if changed:
            try:
                row = validate(self.kind, row)
            except RowError as exc:
                self.removed[INVALID] += 1
                return row, (INVALID, f"{exc.reason}: {exc.detail}")
        verdict = self._filter(line, text_of(self.kind, row), row)
        if verdict is not None:
            self.removed[verdict[0]] += 1
        return row, verdict

    def _filter(self, line: int, text: str, row: dict) -> tuple[str, str] | None:
        s = self.settings
        if s.min_chars is not None and len(text) < s.min_chars:
            return "min chars", f"{len(text)} characters < {s.min_chars}"
        if s.max_chars is not None and len(text) > s.max_chars:
            return "max chars", f"{len(text)} characters > {s.max_chars}"
        for pattern in self.drop:
            if pattern.search(text):
                return "drop pattern", f"matches {pattern.pattern!r}"
        if self.keep and not any(p.search(text) for p in self.keep):
            return (
                "keep pattern",
                f"matches none of {', '.join(repr(p.pattern) for p in self.keep)}",
            )
        if self.count_tokens is not None:
            tokens = self.count_tokens(text)
            if s.min_tokens is not None and tokens < s.min_tokens:
                return "min tokens", f"{tokens} tokens < {s.min_tokens}"
            if s.max_tokens is not None and tokens > s.max_tokens:
                return "max tokens", f"{tokens} tokens > {s.max_tokens}"
        if self.language is not None:
            found = self.language(text)
            if found is not None:
                return "language", found
        if self.dedup is not None:
            labelled = self.kind in ("classification", "feedback")
            return self.dedup.check(line, text, row["label"] if labelled else None)
        return None


def _compile(pattern: str, flag: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise TllmError(f"bad {flag} pattern {pattern!r}: {exc}") from None


def clean_dataset(
    home,
    name: str,
    out: str,
    settings: CleanSettings,
    *,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Write dataset `out`: dataset `name`'s rows after the rules of `settings`; returns the
    new card. `progress(n)` is called with the number of rows read so far."""
    source = open_dataset(home, name)
    if out == name:
        raise TllmError(
            f"write the cleaned rows under a new name (--out), not over {name!r}: "
            "the source stays as it was"
        )
    DatasetWriter.check_free(home, out, overwrite, flag="--out")  # before a tokenizer is loaded
    cleaner = Cleaner(home, source.kind, settings)
    with DatasetWriter(
        home, out, source.kind, source=f"datasets/{name}", format="canonical", overwrite=overwrite
    ) as writer:
        read = 0
        for read, row in enumerate(source.rows(), 1):
            cleaned, verdict = cleaner.clean(read, row)
            if verdict is None:
                writer.add(cleaned)
            else:
                writer.reject(read, *verdict, row)
            if progress is not None and read % 1000 == 0:
                progress(read)
        if progress is not None:
            progress(read)
        return writer.commit(
            extra={
                "cleaned_from": {
                    "name": name,
                    "fingerprint": source.card.get("fingerprint"),
                    "rows": read,
                },
                "clean_settings": asdict(settings),
                "rules": cleaner.rewrites() + cleaner.filters(),  # in the order they ran
                "modified_by_rule": dict(cleaner.modified),
                "removed_by_rule": dict(cleaner.removed),
            }
        )
