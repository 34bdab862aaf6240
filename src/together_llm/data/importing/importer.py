"""Import a file or folder as a dataset, or only check it: read record by record, turn each
record into its kind's canonical row, validate it, and write it, or keep it in
rejected.jsonl with its line and the reason. Nothing is dropped silently, and nothing is
held in memory but the record at hand, so a file of millions of rows takes the memory of one.

JSON Lines, the common case, is read by `jsonl` (a lean loop; several processes for a big
file); JSON arrays, CSV and text folders by `readers`.

The outcome rule (`tllm data import`): the dataset is written when at least one row is
valid; with `strict`, only when every row is and the whole file was read. Otherwise nothing
is written and the summary says why.

Reading stops early only in a JSON array whose structure is broken past repair (an element
whose end cannot be found, a missing ',' between elements): the rows before are kept,
`Summary.stopped` (and the card's "stopped") says at which line and why, and the unread
rest is not counted as rows, valid or rejected. One element that does not decode is a
rejected row, and reading goes on after it.

rejected.jsonl, and `tllm data validate --rejected`, hold one JSON object a line:
  line    the line the record starts on (an int), or for a text folder the file's path
  reason  one of kinds.REASONS, "bad json", "bad csv", "bad encoding" or "unreadable"
  detail  what exactly was wrong, and where
  row     the record's source text as a string, as it is in the file (its line end cut,
          bytes that are not UTF-8 shown as U+FFFD); null only when there is no text
          (an unreadable file)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ...errors import TllmError
from ..kinds import RowError, check_kind
from ..store import DatasetWriter, datasets_dir, printable
from . import jsonl
from .formats import KIND_FIELDS, check_columns, check_format, detect, line_converter, split_columns
from .sources import BadRecord, CsvRecords, JsonArray, TextFiles, first_records, starts_with_array

SHOWN = 5  # bad rows a summary keeps to show


@dataclass
class Summary:
    """What an import or a check found."""

    source: str
    kind: str
    format: str
    detected: str | None  # how the format was told, when it was not given
    columns: dict = field(default_factory=dict)
    read: int = 0  # how many `unit`s were read
    unit: str = "lines"  # lines (JSON Lines), records (JSON array, CSV) or files (text)
    rows: int = 0  # valid rows
    rejected: Counter = field(default_factory=Counter)  # per reason
    first_rejected: list = field(default_factory=list)  # the first few, with line and reason
    stopped: str | None = None  # where and why reading stopped before the end of the file
    skipped_files: int = 0  # entries of a folder left out: hidden, or not text files
    written: bool = False
    dataset: Path | None = None

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "kind": self.kind,
            "format": self.format,
            "detected": self.detected,
            "columns": self.columns,
            "read": self.read,
            "unit": self.unit,
            "rows": self.rows,
            "rejected": self.total_rejected,
            "rejected_by_reason": dict(self.rejected.most_common()),
            "first_rejected": self.first_rejected,
            "stopped": self.stopped,
            "skipped_files": self.skipped_files,
            "written": self.written,
            "dataset": str(self.dataset) if self.dataset else None,
        }


@dataclass
class Plan:
    """How a source will be read: its format, how that was told, and the function turning
    a record into its canonical row as a JSON line (raising RowError)."""

    path: Path
    kind: str
    format: str
    detected: str | None
    columns: dict
    to_line: Callable[[dict], bytes]


def plan(path, kind: str, fmt: str | None = None, columns=()) -> Plan:
    """Check the arguments and tell the format, before anything is read in full."""
    path = Path(path)
    kind = check_kind(kind)
    if not path.exists():
        raise TllmError(f"{path}: no such file or folder")
    if path.is_dir() and fmt not in (None, "text"):
        raise TllmError(f"{path} is a folder: only the text format reads folders (one row a file)")
    how, mapping = None, split_columns(columns)
    if fmt is None:
        fmt, how = detect(path, kind, mapping)
    check_format(fmt, kind, f" (detected from {how})" if how else "")
    check_columns(mapping, fmt, kind)
    if mapping and fmt not in ("csv", "text"):
        _check_keys(path, mapping)
    return Plan(path, kind, fmt, how, mapping, line_converter(fmt, kind, mapping))


def _check_keys(path: Path, columns: dict[str, str]) -> None:
    """A --column naming a key that none of the first records has is refused before
    reading, as CSV refuses a column its header lacks (rather than reject every row)."""
    keys: dict[str, None] = {}
    for _, record in first_records(path):
        keys.update(dict.fromkeys(record))
    for dst, src in columns.items():
        if keys and src not in keys:
            raise TllmError(
                f"--column {dst}={src}: {path.name} has no column {src!r} "
                f"(columns: {', '.join(keys)})"
            )


class _Rejections:
    """Counts rejections per reason, keeps the first few to show, and passes each on."""

    def __init__(self, summary: Summary, keep: Callable | None):
        self.summary, self.keep = summary, keep

    def __call__(self, where, reason: str, detail: str, raw=None) -> None:
        self.summary.rejected[reason] += 1
        if len(self.summary.first_rejected) < SHOWN:
            self.summary.first_rejected.append({"line": where, "reason": reason, "detail": detail})
        if self.keep is not None:
            self.keep(where, reason, detail, raw)


def import_file(
    home,
    source: Plan,
    name: str,
    *,
    strict: bool = False,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Summary:
    """Read `source` into dataset `name`; written only when the outcome rule allows."""

    summary = _summary(source)
    with DatasetWriter(
        home,
        name,
        source.kind,
        source=str(source.path.resolve()),
        format=source.format,
        overwrite=overwrite,
    ) as out:
        _run(
            source,
            summary,
            out.add_line,
            out.add_file,
            _Rejections(summary, out.reject),
            progress,
            part_dir=datasets_dir(home),
            add_block=out.add_block,
        )
        summary.rows = out.rows
        if summary.rows and not (strict and (summary.total_rejected or summary.stopped)):
            extra: dict[str, Any] = {"detected": summary.detected, "read": summary.read}
            extra.update(
                {
                    k: v
                    for k, v in (
                        ("columns", summary.columns),
                        ("stopped", summary.stopped),
                        ("skipped_files", summary.skipped_files),
                    )
                    if v
                }
            )
            out.commit(extra=extra)
            summary.written, summary.dataset = True, out.final
    return summary


def check_file(
    source: Plan, progress: Callable[[int], None] | None = None, keep: Callable | None = None
) -> Summary:
    """The same reading and checks as an import, writing no dataset; `keep(line, reason,
    detail, raw)` gets every rejected row (see `store.rejected_line`)."""
    summary = _summary(source)

    def count(_line: bytes) -> None:
        summary.rows += 1

    def count_part(_part: None, rows: int) -> None:
        summary.rows += rows

    _run(source, summary, count, count_part, _Rejections(summary, keep), progress)
    return summary


def _summary(source: Plan) -> Summary:
    return Summary(str(source.path), source.kind, source.format, source.detected, source.columns)


def _run(
    source: Plan,
    summary: Summary,
    add_line,
    add_part,
    reject,
    progress,
    part_dir: Path | None = None,
    add_block=None,
) -> None:
    summary.unit = "files" if source.format == "text" else "records"
    if source.format == "text":
        files = TextFiles(source.path)
        _records(files, source.to_line, add_line, reject, progress, summary)
        summary.skipped_files = files.skipped + files.hidden
    elif source.format == "csv":
        csv_records = CsvRecords(source.path)
        try:
            _check_header(csv_records, source)
            _records(csv_records, source.to_line, add_line, reject, progress, summary)
        finally:
            csv_records.close()
    elif starts_with_array(source.path):
        _records(JsonArray(source.path), source.to_line, add_line, reject, progress, summary)
    else:
        summary.unit = "lines"
        processes = jsonl.processes_for(source.path)
        if processes > 1:
            summary.read = jsonl.import_lines_parallel(
                source, add_line, add_part, reject, progress, processes, part_dir, add_block
            )
        else:
            summary.read, _ = jsonl.import_lines(
                source.path, source.to_line, add_line, reject, progress, add_block=add_block
            )


def _check_header(reader: CsvRecords, source: Plan) -> None:
    """A CSV file whose columns cannot fill the kind is refused before any row is read."""
    columns = ", ".join(reader.header)
    for dst, src in source.columns.items():
        if src not in reader.header:
            raise TllmError(
                f"--column {dst}={src}: {source.path.name} has no column {src!r} "
                f"(columns: {columns})"
            )
    needed = [f for f in KIND_FIELDS[source.kind] if f != "context"]
    missing = [f for f in needed if f not in source.columns and f not in reader.header]
    if missing:
        example = " ".join(f"--column {f}=COLUMN" for f in missing)
        raise TllmError(
            f"{source.path.name} has no column for {', '.join(missing)} "
            f"(columns: {columns}): map them with {example}"
        )


def _records(reader, to_line, add_line, rejections, progress, summary: Summary) -> None:
    """Any other reader: (where, record, raw) triples, bad records already marked."""

    def reject(where, reason, detail, raw):
        rejections(where, reason, detail, printable(raw))

    count = 0
    for where, record, raw in reader:
        if type(record) is BadRecord and record.fatal:  # the rest is unread: not a row
            summary.stopped = f"line {where}: {record.detail}"
            break
        count += 1
        if type(record) is BadRecord:
            reject(where, record.reason, record.detail, raw)
            continue
        if type(record) is not dict:
            reject(
                where,
                "not an object",
                f"a row must be a JSON object, not {type(record).__name__}",
                raw,
            )
            continue
        try:
            add_line(to_line(record))
        except RowError as error:
            reject(where, error.reason, error.detail, raw)
        except orjson.JSONEncodeError:  # bytes that are not UTF-8, or a \ud800 escape
            reject(where, "bad encoding", "the row holds text that is not valid UTF-8", raw)
        if progress is not None and count % 1024 == 0:
            progress(reader.position())
    summary.read = count
