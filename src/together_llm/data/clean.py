"""`tllm data clean`: repair, filter and deduplicate a dataset into a new one.

The rules run in this fixed order on every row (a rule that is off is skipped):

  1. fix unicode            repair mojibake and broken characters (ftfy)          rewrites
  2. normalize whitespace   newlines, runs of spaces, blank lines, ends           rewrites
  3. min chars / max chars  length of the row's text in characters                removes
  4. drop / keep pattern    regular expressions over the row's text               removes
  5. min tokens / max tokens length in the base model's tokens                    removes
  6. language               langdetect's guess must be one of --lang              removes
  7. duplicate              the same text as an earlier kept row                  removes
  8. near duplicate         MinHash/LSH similarity to an earlier kept row         removes

Rewriting comes first so every later rule sees the repaired text; cheap filters come before
expensive ones (tokenizing, language detection) so those see fewer rows; deduplication comes
last so that a row removed by a filter never "claims" a text and takes a good row down with
it. "The row's text" is `kinds.text_of` (every text field joined); rewriting touches every
text field. Nothing is dropped silently: each removed row goes to the new dataset's
rejected.jsonl with its line in the source dataset, a reason and a detail, and the card
counts what each rule removed and changed. One streaming pass; only deduplication keeps
state: a 16-byte hash per kept row, and for near duplicates its MinHash signature (512
bytes at the default 128 permutations) plus its place in the LSH index.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Callable

from ..errors import TllmError
from .kinds import RowError, text_of, validate
from .store import DatasetWriter, open_dataset

REWRITES = ("fix unicode", "normalize whitespace")
FILTERS = ("min chars", "max chars", "drop pattern", "keep pattern", "min tokens", "max tokens",
           "language", "duplicate", "near duplicate")
INVALID = "invalid after cleaning"  # a rewrite left a row its kind does not allow

# Near-duplicates are compared on character 5-grams of the casefolded text rather than word
# n-grams: characters work for every script (BELLE's Chinese has no spaces to split words
# on), and on short rows an edited word changes only the few 5-grams around it, while with
# word 3-grams one edit in a ten-word instruction changes a third of the shingles.
SHINGLE = 5


@dataclass
class CleanSettings:
    """What `tllm data clean` does; recorded as is in the new dataset's card."""

    fix_unicode: bool = True
    normalize_whitespace: bool = True
    min_chars: int | None = None
    max_chars: int | None = None
    drop: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    min_tokens: int | None = None
    max_tokens: int | None = None
    tokenizer: str | None = None  # the model whose tokenizer counts; None: assistant.yaml's
    lang: list[str] = field(default_factory=list)
    dedup: bool = False
    near_dup: bool = True  # with dedup: near duplicates too, not only exact ones
    near_dup_threshold: float = 0.8
    num_perm: int = 128

    def check(self) -> None:
        for low, high, unit in ((self.min_chars, self.max_chars, "chars"),
                                (self.min_tokens, self.max_tokens, "tokens")):
            for flag, value in ((f"--min-{unit}", low), (f"--max-{unit}", high)):
                if value is not None and value < 0:
                    raise TllmError(f"{flag} must be 0 or more, not {value}")
            if low is not None and high is not None and low > high:
                raise TllmError(f"--min-{unit} {low} is larger than --max-{unit} {high}: no row could pass")
        if not 0 < self.near_dup_threshold <= 1:
            raise TllmError(f"--near-dup-threshold must be above 0 and at most 1, not {self.near_dup_threshold}")
        if self.num_perm < 16:
            raise TllmError(f"--num-perm must be at least 16, not {self.num_perm}")


# --- rewriting -------------------------------------------------------------------------------

def fix_unicode(text: str) -> str:
    """Repair mojibake ("cafÃ©" -> "café"), broken surrogates and stray control characters.

    Only repairs: quotes stay curly, full-width punctuation (Chinese "，") stays full-width,
    and HTML entities stay as written (the text may be about HTML)."""
    import ftfy

    return ftfy.fix_text(text, uncurl_quotes=False, fix_character_width=False,
                         unescape_html=False, explain=False)


_NEWLINES = re.compile(r"\r\n|[\r\u2028\u2029\x85]")
_INDENT = re.compile(r"^[ \t]*")
_SPACES = re.compile(r"[^\S\n]+")  # any whitespace but a newline: tabs, NBSP, ...
_BLANK_LINES = re.compile(r"\n{3,}")


def normalize_whitespace(text: str) -> str:
    """One kind of newline, no trailing spaces, runs of spaces inside a line made one, at
    most one blank line in a row, nothing at either end. Single newlines and each line's
    leading indentation stay: code and lists need them."""
    lines = []
    for line in _NEWLINES.sub("\n", text).split("\n"):
        indent = _INDENT.match(line).group()
        lines.append(indent + _SPACES.sub(" ", line[len(indent):]).rstrip())
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def rewrite(kind: str, row: dict, fix: Callable[[str], str]) -> dict:
    """The row with `fix` applied to every text field (the label of a classification row
    included; a feedback row's boolean label is not text)."""
    def turns(messages):
        return [{"role": m["role"], "content": fix(m["content"])} for m in messages]

    if kind == "chat":
        return {"messages": turns(row["messages"])}
    if kind in ("preference", "feedback"):
        answers = ("chosen", "rejected") if kind == "preference" else ("completion",)
        return {"prompt": turns(row["prompt"]), **{k: fix(row[k]) for k in answers},
                **({"label": row["label"]} if kind == "feedback" else {})}
    return {k: fix(v) if isinstance(v, str) else v for k, v in row.items()}


# --- measuring -------------------------------------------------------------------------------

def token_counter(home, model_name: str | None) -> Callable[[str], int]:
    """Count tokens with a registered model's tokenizer (default: the home's base model).

    A GGUF model is opened vocabulary-only (no weights, a fraction of a second); an HF
    directory through transformers."""
    from ..models.registry import get_model

    entry = get_model(home, model_name or home.load_config().model)
    if entry.gguf_path is not None:
        import contextlib
        import io

        from llama_cpp import Llama

        # Even with verbose=False llama.cpp warns that a vocabulary-only model has no
        # training context; that line means nothing to someone cleaning data.
        with contextlib.redirect_stderr(io.StringIO()):
            vocab = Llama(model_path=str(entry.gguf_path), vocab_only=True, verbose=False)
        return lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))
    if entry.hf_dir is not None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(entry.hf_dir, local_files_only=True)
        tokenizer.model_max_length = 1 << 62  # counting only: no "longer than the model" warning
        return lambda text: len(tokenizer.encode(text, add_special_tokens=False))
    raise TllmError(f"model {entry.name!r} ({entry.kind}) has no local tokenizer to count tokens "
                    "with: pick a local model with --tokenizer")


def language_detector(wanted: list[str]) -> Callable[[str], tuple | None]:
    """A check that a text is in one of the `wanted` languages (ISO codes as langdetect
    names them: en, fr, de, zh-cn...; "zh" accepts both zh-cn and zh-tw)."""
    import os

    from langdetect import DetectorFactory, detect
    from langdetect.detector_factory import PROFILES_DIRECTORY
    from langdetect.lang_detect_exception import LangDetectException

    known = set(os.listdir(PROFILES_DIRECTORY))
    known |= {code.split("-")[0] for code in known}
    wanted = [code.strip().lower() for code in wanted if code.strip()]
    for code in wanted:
        if code not in known:
            raise TllmError(f"unknown language code {code!r} for --lang: use codes like en, fr, de, zh")
    DetectorFactory.seed = 0  # langdetect samples at random; a seed makes reruns agree

    def check(text: str):
        try:
            found = detect(text)
        except LangDetectException:
            return "language unknown", "no language could be detected"
        if found in wanted or found.split("-")[0] in wanted:
            return None
        return "language", f"detected {found}, wanted {', '.join(wanted)}"

    return check


# --- deduplication ---------------------------------------------------------------------------

class Deduplicator:
    """Exact and near-duplicate detection against the rows kept so far.

    Exact: a hash of the text with its whitespace collapsed. Near: a MinHash signature of
    the text's character 5-grams, looked up in an LSH index, each candidate confirmed by
    its estimated Jaccard similarity (LSH alone also returns some less similar rows). A row
    with a label (classification, feedback) only duplicates a row with the same label: the
    same text with two labels is a conflict for the user to see, not a copy."""

    def __init__(self, near: bool, threshold: float, num_perm: int):
        self.seen: dict[bytes, int] = {}
        self.near = near
        if near:
            from datasketch import MinHash, MinHashLSH

            self.threshold, self.num_perm = threshold, num_perm
            # crc32 instead of datasketch's default sha1: four times faster, deterministic
            # across runs (unlike hash()), and 32 bits is plenty for the shingles of a row.
            self._proto = MinHash(num_perm=num_perm, hashfunc=zlib.crc32)
            self.lsh = _index(MinHashLSH, threshold, num_perm)
            self.signatures: dict[int, tuple] = {}  # line -> (hash values, label)

    def _signature(self, text: str):
        from datasketch import MinHash

        flat = " ".join(text.casefold().split())
        shingles = {flat[i:i + SHINGLE].encode() for i in range(max(1, len(flat) - SHINGLE + 1))}
        sig = MinHash(num_perm=self.num_perm, hashfunc=zlib.crc32, scheme=self._proto.scheme,
                      permutations=self._proto.permutations)
        sig.update_batch(shingles)
        return sig

    def check(self, line: int, text: str, label) -> tuple | None:
        """None and remember the row if it is new, else (rule, reason, detail)."""
        key = hashlib.blake2b(f"{label!r}\0{' '.join(text.split())}".encode(), digest_size=16).digest()
        if key in self.seen:
            return "duplicate", "duplicate", f"same as line {self.seen[key]}"
        sig = None
        if self.near:
            import numpy as np

            sig = self._signature(text)
            best, best_line = -1.0, None
            for other in sorted(self.lsh.query(sig)):  # sorted: ties name the earliest line
                values, other_label = self.signatures[other]
                if other_label == label:
                    similarity = float(np.count_nonzero(values == sig.hashvalues)) / self.num_perm
                    if similarity > best:
                        best, best_line = similarity, other
            if best_line is not None and best >= self.threshold:
                return "near duplicate", "near duplicate", f"like line {best_line}, similarity {best:.2f}"
            self.lsh.insert(line, sig, check_duplication=False)
            self.signatures[line] = (sig.hashvalues.copy(), label)
        self.seen[key] = line
        return None


def _index(MinHashLSH, threshold: float, num_perm: int):
    """An LSH index for finding candidates at `threshold`.

    Every candidate is checked against the real threshold, so a missed pair costs more than
    an extra candidate: the bands are tuned to miss few (with datasketch's default even
    weights, a pair 0.05 above a 0.8 threshold is missed about a third of the time; with
    these, under 1%). Near 1 the tuning wants a single band, which datasketch refuses; an
    index tuned a little lower only returns more candidates."""
    lowered = threshold
    while True:
        try:
            return MinHashLSH(threshold=lowered, num_perm=num_perm, weights=(0.05, 0.95))
        except ValueError:
            if lowered <= 0.5:
                raise
            lowered -= 0.02


# --- the pipeline ----------------------------------------------------------------------------

class Cleaner:
    """The rules of one `CleanSettings`, applied to one row at a time."""

    def __init__(self, home, kind: str, settings: CleanSettings):
        settings.check()
        self.kind, self.settings = kind, settings
        self.drop = [_compile(p, "--drop") for p in settings.drop]
        self.keep = [_compile(p, "--keep") for p in settings.keep]
        needs_tokens = settings.min_tokens is not None or settings.max_tokens is not None
        self.count_tokens = token_counter(home, settings.tokenizer) if needs_tokens else None
        self.language = language_detector(settings.lang) if settings.lang else None
        self.dedup = (Deduplicator(settings.near_dup, settings.near_dup_threshold, settings.num_perm)
                      if settings.dedup else None)
        self.modified: Counter[str] = Counter({name: 0 for name in self.rewrites()})
        self.removed: Counter[str] = Counter({name: 0 for name in self.filters()})

    def rewrites(self) -> list[str]:
        s = self.settings
        return [name for name, on in zip(REWRITES, (s.fix_unicode, s.normalize_whitespace)) if on]

    def filters(self) -> list[str]:
        s = self.settings
        on = (s.min_chars is not None, s.max_chars is not None, bool(s.drop), bool(s.keep),
              s.min_tokens is not None, s.max_tokens is not None, bool(s.lang), s.dedup,
              s.dedup and s.near_dup)
        return [name for name, active in zip(FILTERS, on) if active]

    def clean(self, line: int, row: dict) -> tuple[dict, tuple | None]:
        """(the row, possibly rewritten; None if it stays, else (reason, detail))."""
        changed = False
        for name, fix in (("fix unicode", fix_unicode), ("normalize whitespace", normalize_whitespace)):
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
                return row, (exc.reason, f"after cleaning: {exc.detail}")
        verdict = self._filter(line, text_of(self.kind, row), row)
        if verdict is None:
            return row, None
        rule, reason, detail = verdict
        self.removed[rule] += 1
        return row, (reason, detail)

    def _filter(self, line: int, text: str, row: dict) -> tuple | None:
        s = self.settings
        if s.min_chars is not None and len(text) < s.min_chars:
            return "min chars", "too short", f"{len(text)} characters, at least {s.min_chars} wanted"
        if s.max_chars is not None and len(text) > s.max_chars:
            return "max chars", "too long", f"{len(text)} characters, at most {s.max_chars} wanted"
        for pattern in self.drop:
            if pattern.search(text):
                return "drop pattern", "regex drop", f"matches {pattern.pattern!r}"
        if self.keep and not any(p.search(text) for p in self.keep):
            wanted = ", ".join(repr(p.pattern) for p in self.keep)
            return "keep pattern", "no keep match", f"matches none of {wanted}"
        if self.count_tokens is not None:
            tokens = self.count_tokens(text)
            if s.min_tokens is not None and tokens < s.min_tokens:
                return "min tokens", "too short", f"{tokens} tokens, at least {s.min_tokens} wanted"
            if s.max_tokens is not None and tokens > s.max_tokens:
                return "max tokens", "too long", f"{tokens} tokens, at most {s.max_tokens} wanted"
        if self.language is not None:
            found = self.language(text)
            if found is not None:
                return ("language", *found)
        if self.dedup is not None:
            labelled = self.kind in ("classification", "feedback")
            return self.dedup.check(line, text, row["label"] if labelled else None)
        return None


def _compile(pattern: str, flag: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise TllmError(f"bad {flag} pattern {pattern!r}: {exc}") from None


def clean_dataset(home, name: str, out: str, settings: CleanSettings, *, overwrite: bool = False,
                  progress: Callable[[int], None] | None = None) -> dict:
    """Write dataset `out`: dataset `name`'s rows after the rules of `settings`; returns the
    new card. `progress(n)` is called with the number of rows read so far."""
    source = open_dataset(home, name)
    if out == name:
        raise TllmError(f"write the cleaned rows under a new name (--out), not over {name!r}: "
                        "the source stays as it was")
    cleaner = Cleaner(home, source.kind, settings)
    with DatasetWriter(home, out, source.kind, source=f"datasets/{name}", format="canonical",
                       overwrite=overwrite) as writer:
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
        return writer.commit(extra={
            "cleaned_from": {"name": name, "fingerprint": source.card.get("fingerprint"), "rows": read},
            "clean_settings": asdict(settings),
            "rules": cleaner.rewrites() + cleaner.filters(),  # in the order they ran
            "modified_by_rule": dict(cleaner.modified),
            "removed_by_rule": dict(cleaner.removed),
        })
