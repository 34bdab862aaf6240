"""Reading source files record by record, with the line each record starts on, without
ever holding the whole file: JSON arrays element by element, CSV record by record, text
folders file by file. (JSON Lines is read by the importer's own loop, the hot path.)

Each reader yields (where, record, raw): `where` is the line number (the file path for
text files), `record` a parsed dict (or any JSON value, for the importer to refuse) or a
`BadRecord` saying why it could not be read, and `raw` what to keep in rejected.jsonl.
A UTF-8 byte-order mark is skipped everywhere.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from ..errors import TllmError

BOM = b"\xef\xbb\xbf"
CHUNK = 1 << 20  # characters read at a time from a JSON array
LARGEST_ELEMENT = 64 << 20  # an array element longer than this is taken as broken JSON
_JSON_SPACE = " \t\n\r"


@dataclass
class BadRecord:
    """A record that could not be parsed; `fatal` when nothing after it can be read."""
    reason: str
    detail: str
    fatal: bool = False


def starts_with_array(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096).removeprefix(BOM).lstrip()
    return head.startswith(b"[")


def first_record(path: Path, look: int = 50) -> tuple[int, dict]:
    """The first JSON object of a JSON Lines file or JSON array and its line, for telling
    the format; lines that do not parse are passed over (the import reports them)."""
    if starts_with_array(path):
        for line, record, _ in JsonArray(path):
            if isinstance(record, dict):
                return line, record
            if isinstance(record, BadRecord) or line > look:
                break
    else:
        with open(path, "rb") as f:
            for line, raw in enumerate(f, 1):
                try:
                    record = orjson.loads(raw.removeprefix(BOM) if line == 1 else raw)
                except orjson.JSONDecodeError:
                    record = None
                if isinstance(record, dict):
                    return line, record
                if line >= look:
                    break
    raise TllmError(f"found no JSON object in the first {look} lines of {path.name}: "
                    "expected JSON Lines (one object a line) or a JSON array of objects")


class JsonArray:
    """The elements of a top-level JSON array, decoded one at a time from a sliding buffer,
    each with the line it starts on."""

    def __init__(self, path: Path):
        self.path = path
        self._file = None

    def position(self) -> int:
        return self._file.buffer.tell() if self._file and not self._file.closed else 0

    def __iter__(self):
        decoder = json.JSONDecoder()
        # Bytes that are not UTF-8 survive as lone surrogates; the row holding them is
        # then rejected as "bad encoding" and the rest of the file still read.
        with open(self.path, encoding="utf-8-sig", errors="surrogateescape") as f:
            self._file = f
            self.buf, self.pos, self.eof = "", 0, False
            self.line, self.mark = 1, 0  # the line number at buffer index `mark`
            if not self._skip_space() or self.buf[self.pos] != "[":
                raise TllmError(f"{self.path.name} is not a JSON array")
            self.pos += 1
            first = True
            while True:
                if not self._skip_space():
                    yield self._line_at(self.pos), BadRecord(
                        "bad json", "the file ends before the array's closing ]", fatal=True), None
                    return
                char = self.buf[self.pos]
                if char == "]":
                    self.pos += 1
                    if self._skip_space():
                        yield self._line_at(self.pos), BadRecord(
                            "bad json", "text after the array's closing ]", fatal=True), None
                    return
                if not first:
                    if char != ",":
                        yield self._line_at(self.pos), BadRecord(
                            "bad json", f"expected ',' or ']' between elements, found {char!r}; "
                                        "the rest of the file cannot be read", fatal=True), None
                        return
                    self.pos += 1
                    if not self._skip_space():
                        continue  # reported as the missing ] above
                first = False
                found = self._element(decoder)
                yield found
                if isinstance(found[1], BadRecord):
                    return

    def _element(self, decoder):
        start = self.pos
        while True:
            try:
                record, end = decoder.raw_decode(self.buf, start)
                if end < len(self.buf) or self.eof:  # a number at the buffer's end may go on
                    break
            except json.JSONDecodeError as error:
                if self.eof or len(self.buf) - start > LARGEST_ELEMENT:
                    line = self._line_at(start)
                    at = line + self.buf.count("\n", start, error.pos)
                    return line, BadRecord("bad json", f"{error.msg} (line {at}); the rest of the "
                                                       "JSON array cannot be read", fatal=True), None
            start = self._refill(start)
        line = self._line_at(start)
        self.pos = end
        return line, record, self.buf[start:end]

    def _skip_space(self) -> bool:
        """Move past whitespace; False at the end of the file."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _JSON_SPACE:
                self.pos += 1
            if self.pos < len(self.buf):
                return True
            if self.eof:
                return False
            self.pos = self._refill(self.pos)

    def _refill(self, keep: int) -> int:
        """Drop the buffer before index `keep`, read more; returns `keep`'s new index."""
        self._line_at(keep)
        self.buf, self.mark = self.buf[keep:], 0
        more = self._file.read(CHUNK)
        self.eof = not more
        self.buf += more
        return 0

    def _line_at(self, index: int) -> int:
        self.line += self.buf.count("\n", self.mark, index)
        self.mark = index
        return self.line


class CsvRecords:
    """CSV records as {column: value} dicts, with the line each record starts on (a quoted
    field may span lines). The delimiter is the most frequent of , ; and tab in the header."""

    def __init__(self, path: Path):
        self.path = path
        self._file = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")
        head = self._file.readline()
        self._file.seek(0)
        self.delimiter = max((",", ";", "\t"), key=head.count) if head.strip() else ","
        self._reader = csv.reader(self._file, delimiter=self.delimiter)
        csv.field_size_limit(1 << 30)  # long texts are normal in datasets; the default is 128 KiB
        try:
            self.header = [name.strip() for name in next(self._reader)]
        except StopIteration:
            self._file.close()
            raise TllmError(f"{path.name} is empty: a CSV file needs a header row") from None
        if len(set(self.header)) != len(self.header):
            self._file.close()
            raise TllmError(f"{path.name}: the header names a column twice ({', '.join(self.header)})")

    def position(self) -> int:
        return self._file.buffer.tell() if not self._file.closed else 0

    def close(self) -> None:
        self._file.close()

    def __iter__(self):
        width, done = len(self.header), self._reader.line_num
        with self._file:
            while True:
                start = done + 1
                try:
                    values = next(self._reader)
                except StopIteration:
                    return
                except csv.Error as error:
                    done = self._reader.line_num
                    yield start, BadRecord("bad csv", str(error)), None
                    continue
                done = self._reader.line_num
                if not values:
                    continue  # a blank line
                if len(values) != width:
                    yield start, BadRecord("bad csv", f"{len(values)} fields where the header has "
                                                      f"{width}"), values
                    continue
                record = dict(zip(self.header, values))
                yield start, record, record


class TextFiles:
    """A .txt/.md file, or every one under a folder (recursively, in name order, hidden
    entries left out): one record {"text": the whole file} each, `where` its path."""

    SUFFIXES = (".txt", ".md", ".markdown")

    def __init__(self, path: Path):
        self.path = path
        self.skipped = 0  # files in the folder that are not text files
        self.done = 0

    def position(self) -> int:
        return self.done

    def _files(self):
        if not self.path.is_dir():
            yield self.path
            return
        for folder, dirs, names in os.walk(self.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if name.startswith("."):
                    continue
                if not name.lower().endswith(self.SUFFIXES):
                    self.skipped += 1
                    continue
                yield Path(folder) / name

    def __iter__(self):
        for file in self._files():
            where = str(file.relative_to(self.path)) if self.path.is_dir() else str(file)
            data = file.read_bytes()
            self.done += len(data)
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError as error:
                yield where, BadRecord("bad encoding", f"not UTF-8 text ({error.reason} at byte "
                                                       f"{error.start})"), None
                continue
            yield where, {"text": text}, None
