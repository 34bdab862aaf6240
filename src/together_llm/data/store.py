"""Datasets in a home: `datasets/<name>/` holds data.jsonl (canonical rows, one JSON object a
line), rejected.jsonl (what could not be used, with its line and reason), card.json (where
the rows came from and what happened to them), and after `tllm data split` train.jsonl and
eval.jsonl.

A dataset is written into a hidden temporary folder beside its final place and renamed
into place only when complete, so an interrupted import never leaves half a dataset under
a real name, and an existing dataset is replaced only when the caller asks.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from ..errors import TllmError, check_name
from ..home import replace_dir
from .kinds import check_kind

SPLITS = ("train", "eval")


def datasets_dir(home) -> Path:
    return home.datasets_dir


def list_datasets(home) -> list[Dataset]:
    root = datasets_dir(home)
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not entry.name.startswith(".") and (entry / "card.json").is_file():
            found.append(Dataset(entry))
    return found


def check_dataset_name(name: str) -> str:
    """A dataset name: safe as a folder name, and not hidden (names starting with "." are
    this module's temporary folders and Self-Instruct's work folders)."""
    check_name(name, "dataset name")
    if name.startswith("."):
        raise TllmError(f"invalid dataset name {name!r}: it may not start with '.'")
    return name


def open_dataset(home, name: str) -> Dataset:
    folder = datasets_dir(home) / check_dataset_name(name)
    if not (folder / "card.json").is_file():
        known = ", ".join(d.name for d in list_datasets(home)) or "none yet"
        raise TllmError(f"no dataset named {name!r} in {datasets_dir(home)} (datasets: {known})")
    return Dataset(folder)


class Dataset:
    """A finished dataset on disk; rows are read lazily, one line at a time."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.name = folder.name
        self.card = orjson.loads((folder / "card.json").read_bytes())
        self.kind = self.card["kind"]

    def path(self, split: str | None = None) -> Path:
        """data.jsonl, or train.jsonl / eval.jsonl once the dataset has been split."""
        if split is None:
            return self.folder / "data.jsonl"
        if split not in SPLITS:
            raise TllmError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
        path = self.folder / f"{split}.jsonl"
        if not path.is_file():
            raise TllmError(
                f"dataset {self.name!r} has no {split} split: run `tllm data split {self.name}`"
            )
        return path

    @property
    def has_splits(self) -> bool:
        return all((self.folder / f"{s}.jsonl").is_file() for s in SPLITS)

    def rows(self, split: str | None = None) -> Iterator[dict]:
        with open(self.path(split), "rb") as f:
            for line in f:
                if line.strip():
                    yield orjson.loads(line)

    def numbered_rows(self, split: str | None = None) -> Iterator[tuple[int, dict]]:
        """(line number, row) pairs, for steps that report rows by their line."""
        path = self.path(split)
        for number, line in numbered_lines(path):
            try:
                yield number, orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise TllmError(
                    f"{path}:{number} is damaged ({exc}); re-import the dataset"
                ) from None

    def rejected(self) -> Iterator[dict]:
        path = self.folder / "rejected.jsonl"
        if path.is_file():
            with open(path, "rb") as f:
                for line in f:
                    yield orjson.loads(line)

    def __len__(self) -> int:
        return int(self.card["rows"])

    def save_card(self) -> None:
        _write_card(self.folder, self.card)


def _write_card(folder: Path, card: dict) -> None:
    tmp = folder / "card.json.tmp"
    tmp.write_bytes(orjson.dumps(card, option=orjson.OPT_INDENT_2) + b"\n")
    tmp.replace(folder / "card.json")


class DatasetWriter:
    """Write a new dataset row by row; `commit()` moves it into place with its card.

        with DatasetWriter(home, "mine", "chat", source="a.jsonl", format="alpaca") as out:
            out.add(row)                          # a canonical, validated row
            out.reject(7, "missing field", "'output' is missing", raw_line)
            out.commit(extra={"detected": True})

    Leaving the block without commit() (an error, Ctrl-C) removes the temporary folder.
    """

    @staticmethod
    def check_free(
        home, name: str, overwrite: bool = False, flag: str = "--name", can_overwrite: bool = True
    ) -> None:
        """Refuse a name that is taken (before expensive work starts), unless overwriting.
        `flag` is the option that named it; `can_overwrite` whether --overwrite exists."""
        final = datasets_dir(home) / check_dataset_name(name)
        if final.exists() and not overwrite:
            replace = ", pass --overwrite to replace it," if can_overwrite else ""
            raise TllmError(
                f"dataset {name!r} already exists: choose another {flag}{replace} "
                f"or remove {final} first"
            )

    def __init__(
        self, home, name: str, kind: str, *, source: str, format: str, overwrite: bool = False
    ):
        self.home = home
        self.name = check_dataset_name(name)
        self.kind = check_kind(kind)
        self.final = datasets_dir(home) / self.name
        self.check_free(home, name, overwrite)
        self.source, self.format = source, format
        self.tmp = datasets_dir(home) / f".tmp-{self.name}-{os.getpid()}"
        self.rows = 0
        self.rejected_by_reason: Counter[str] = Counter()
        self._digest = hashlib.sha256()
        self._data: BinaryIO | None = None  # data.jsonl and rejected.jsonl, open in `with`
        self._rejected: BinaryIO | None = None
        self._pending: list[bytes] = []  # lines add_line has not written yet

    def __enter__(self) -> DatasetWriter:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self._data = open(self.tmp / "data.jsonl", "wb", buffering=1 << 20)
        self._rejected = open(self.tmp / "rejected.jsonl", "wb", buffering=1 << 16)
        return self

    def add(self, row: dict) -> None:
        self.add_line(orjson.dumps(row) + b"\n")

    def add_line(self, line: bytes) -> None:
        """Add an already serialised canonical row (ending with a newline). Lines are
        gathered and written and hashed a few thousand at a time: a write and a hash call
        per line made a million-row import 12-20% slower."""
        self._pending.append(line)
        self.rows += 1
        if len(self._pending) >= 4096:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            block = b"".join(self._pending)
            self._pending.clear()
            self._write(block)

    def _write(self, data) -> None:
        """The one place rows reach data.jsonl, so the fingerprint covers every byte."""
        _opened(self._data).write(data)
        self._digest.update(data)

    def add_block(self, data, rows: int) -> None:
        """Add `rows` serialised canonical rows at once (bytes or any buffer, each row ending
        with a newline), after the lines add_line has gathered."""
        self._flush()
        self._write(data)
        self.rows += rows

    def add_file(self, path: Path, rows: int) -> None:
        """Append a file of `rows` serialised canonical rows (a part another process wrote)."""
        self._flush()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                self._write(block)
        self.rows += rows

    def reject(self, line: int | str | None, reason: str, detail: str, raw=None) -> None:
        """Keep a row that could not be used, with where it was and why."""
        _opened(self._rejected).write(rejected_line(line, reason, detail, raw))
        self.rejected_by_reason[reason] += 1

    def commit(self, extra: dict | None = None) -> dict:
        """Close the files, write card.json and move the dataset into place; returns the card."""
        self._flush()
        self._close()
        card = {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "format": self.format,
            "rows": self.rows,
            "rejected": sum(self.rejected_by_reason.values()),
            "rejected_by_reason": dict(self.rejected_by_reason.most_common()),
            "fingerprint": self._digest.hexdigest()[:16],
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **(extra or {}),
        }
        _write_card(self.tmp, card)
        replace_dir(self.tmp, self.final)
        self._committed = True
        return card

    def _close(self) -> None:
        for f in (self._data, self._rejected):
            if f is not None and not f.closed:
                f.close()

    def __exit__(self, *exc) -> None:
        self._close()
        if not getattr(self, "_committed", False):
            shutil.rmtree(self.tmp, ignore_errors=True)


def _opened(file: BinaryIO | None) -> BinaryIO:
    """A DatasetWriter's file, which exists only inside its `with` block."""
    if file is None:
        raise RuntimeError("a DatasetWriter is written to inside its `with` block only")
    return file


def printable(raw):
    """A record's text as JSON can hold it: lone surrogates (from bytes that were not UTF-8)
    become replacement characters. Anything but a string passes through."""
    if not isinstance(raw, str):
        return raw
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def rejected_line(where, reason: str, detail: str, raw=None) -> bytes:
    """One line of rejected.jsonl: {"line": where (a line number, or a file's path), "reason",
    "detail", "row": the record's source text, or null when there is none}. Text that is not
    valid UTF-8 is kept with replacement characters, so the file always parses."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    else:
        raw = printable(raw)
    if isinstance(raw, str):
        raw = raw.rstrip("\r\n")
    return orjson.dumps({"line": where, "reason": reason, "detail": detail, "row": raw}) + b"\n"


def numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) for each non-blank line of a JSONL file; nothing if it is missing."""
    if not path.is_file():
        return
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                yield number, line


def fingerprint_file(path: Path) -> str:
    """The short hash cards record for a data file (the same one DatasetWriter computes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
