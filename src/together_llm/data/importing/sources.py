"""Reading source files record by record, with the line each record starts on, without
ever holding the whole file: JSON arrays element by element, CSV record by record, text
folders file by file. (JSON Lines is read by the importer's own loop, the hot path.)

Each reader yields (where, record, raw): `where` is the line number (the file path for
text files), `record` a parsed dict (or any JSON value, for the importer to refuse) or a
`BadRecord` saying why it could not be read, and `raw` the record's source text as a
string (None only when there is none: an unreadable file, or a stop), which rejected.jsonl
keeps. A UTF-8 byte-order mark is skipped everywhere.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import orjson

from ...errors import TllmError

BOM = b"\xef\xbb\xbf"
CHUNK = 1 << 20  # characters read at a time from a JSON array
LARGEST_ELEMENT = 64 << 20  # an array element longer than this is taken as broken JSON
_JSON_SPACE = " \t\n\r"


@dataclass
class BadRecord:
    """A record that could not be parsed; `fatal` when nothing after it can be read (the
    importer then reports where reading stopped, and does not count it as a row)."""

    reason: str
    detail: str
    fatal: bool = False


def open_text(path: Path, newline: str | None = None) -> io.TextIOWrapper[io.BufferedReader]:
    """`path` as text, as `open` reads it (a byte-order mark skipped, bytes that are not UTF-8
    kept as lone surrogates), typed with its buffered binary file: the readers report their
    progress as that file's position."""
    return io.TextIOWrapper(
        open(path, "rb"), encoding="utf-8-sig", errors="surrogateescape", newline=newline
    )


def starts_with_array(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096).removeprefix(BOM).lstrip()
    return head.startswith(b"[")


def first_records(path: Path, look: int = 50):
    """(line, object) for the JSON objects among the first `look` lines of a JSON Lines file
    or elements of a JSON array; what does not parse is passed over (the import reports it)."""
    if starts_with_array(path):
        for count, (line, record, _) in enumerate(JsonArray(path), 1):
            if isinstance(record, dict):
                yield line, record
            if count >= look or isinstance(record, BadRecord) and record.fatal:
                return
        return
    with open(path, "rb") as f:
        for line, raw in enumerate(f, 1):
            try:
                record = orjson.loads(raw.removeprefix(BOM) if line == 1 else raw)
            except orjson.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                yield line, record
            if line >= look:
                return


def first_record(path: Path, look: int = 50) -> tuple[int, dict]:
    """The first JSON object of a JSON Lines file or JSON array and its line, for telling
    the format."""
    for found in first_records(path, look):
        return found
    raise TllmError(
        f"found no JSON object in the first {look} lines of {path.name}: "
        "expected JSON Lines (one object a line) or a JSON array of objects"
    )


class JsonArray:
    """The elements of a top-level JSON array, decoded one at a time from a sliding buffer,
    each with the line it starts on. An element that does not decode (a syntax error, or
    nesting too deep for the decoder) is stepped over when its end can be found, and
    reading goes on; otherwise reading stops there (a fatal BadRecord)."""

    def __init__(self, path: Path):
        self.path = path
        self._file: io.TextIOWrapper[io.BufferedReader] | None = None  # open while iterating

    def position(self) -> int:
        return self._file.buffer.tell() if self._file and not self._file.closed else 0

    def __iter__(self):
        decoder = json.JSONDecoder()
        # Bytes that are not UTF-8 survive as lone surrogates; the row holding them is
        # then rejected as "bad encoding" and the rest of the file still read.
        with open_text(self.path) as f:
            self._file = f
            self.buf, self.pos, self.eof = "", 0, False
            self.line, self.mark = 1, 0  # the line number at buffer index `mark`
            if not self._skip_space() or self.buf[self.pos] != "[":
                raise TllmError(f"{self.path.name} is not a JSON array")
            self.pos += 1
            first = True
            while True:
                if not self._skip_space():
                    yield (
                        self._line_at(self.pos),
                        BadRecord(
                            "bad json", "the file ends before the array's closing ]", fatal=True
                        ),
                        None,
                    )
                    return
                char = self.buf[self.pos]
                if char == "]":
                    self.pos += 1
                    if self._skip_space():
                        yield (
                            self._line_at(self.pos),
                            BadRecord("bad json", "text after the array's closing ]", fatal=True),
                            None,
                        )
                    return
                if not first:
                    if char != ",":
                        yield (
                            self._line_at(self.pos),
                            BadRecord(
                                "bad json",
                                f"expected ',' or ']' between elements, found {char!r}",
                                fatal=True,
                            ),
                            None,
                        )
                        return
                    self.pos += 1
                    if not self._skip_space():
                        continue  # reported as the missing ] above
                first = False
                found = self._element(decoder)
                yield found
                if isinstance(found[1], BadRecord) and found[1].fatal:
                    return

    def _element(self, decoder):
        start, problem, end_finder = self.pos, None, _ElementEnd()
        while True:
            if problem is None or problem[1] is not None:  # a syntax error may be a cut-off element
                try:
                    record, end = decoder.raw_decode(self.buf, start)
                    if end < len(self.buf) or self.eof:  # a number at the buffer's end may go on
                        break
                    problem = None
                except json.JSONDecodeError as error:
                    problem = (error.msg, self.buf.count("\n", start, error.pos))
                except RecursionError:
                    problem = ("nested too deeply to decode", None)
            if problem is not None:
                end = end_finder.find(self.buf, start, self.eof)
                if end is not None or self.eof or len(self.buf) - start > LARGEST_ELEMENT:
                    return self._bad_element(start, end, problem)
            start = self._refill(start)
        line = self._line_at(start)
        self.pos = end
        return line, record, self.buf[start:end]

    def _bad_element(self, start: int, end: int | None, problem):
        """An element that does not decode: rejected alone when its end was found, else
        reading stops."""
        line = self._line_at(start)
        message, lines_in = problem
        message = message.removesuffix(" at")  # "Invalid control character at": the line follows
        detail = message if lines_in is None else f"{message} (line {line + lines_in})"
        if end is None or end == _ElementEnd.LOST:
            return (
                line,
                BadRecord("bad json", f"{detail}; the element's end cannot be found", fatal=True),
                None,
            )
        self.pos = end
        return line, BadRecord("bad json", detail), self.buf[start:end]

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
        if self._file is None:
            raise RuntimeError("JsonArray reads only while it is iterated")
        more = self._file.read(CHUNK)
        self.eof = not more
        self.buf += more
        return 0

    def _line_at(self, index: int) -> int:
        self.line += self.buf.count("\n", self.mark, index)
        self.mark = index
        return self.line


_STRUCTURE = re.compile(r'[\[\]{}"]')
_IN_STRING = re.compile(r'["\\\n]')
_SCALAR_END = re.compile(r"[,\]\s]")


class _ElementEnd:
    """Where an array element that does not decode ends, found without decoding it, so that
    one bad element costs one row: brackets are matched (without recursion, whatever the
    depth) and strings stepped over. A raw newline ends a string, since valid JSON has none
    inside strings: an unclosed quote does not swallow the rest of the file. A closing
    bracket of the wrong type, or the end of the file, means the element's end is LOST.
    `find` resumes where it left off when the buffer has been refilled."""

    LOST = -1

    def __init__(self):
        self.done = 0  # characters after the element's start already scanned
        self.closers: list[str] = []
        self.in_string = self.scalar = self.begun = False

    def find(self, buf: str, start: int, eof: bool) -> int | None:
        """The index just past the element's end, LOST, or None when more text is needed."""
        i, n, closers = start + self.done, len(buf), self.closers
        while i < n:
            if self.in_string:
                found = _IN_STRING.search(buf, i)
                if found is None:
                    i = n
                    break
                if found.group() == "\\":
                    if found.end() >= n:  # the escaped character is in the next chunk
                        i = found.start()
                        break
                    i = found.end() + 1
                    continue
                i, self.in_string = found.end(), False
                if not closers:
                    return i  # a string element
                continue
            if not self.begun:
                self.begun = True
                self.scalar = buf[i] not in '[{"'
                if buf[i] == '"':
                    i, self.in_string = i + 1, True
                    continue
            if self.scalar:
                found = _SCALAR_END.search(buf, i)
                if found is None:
                    i = n
                    break
                return found.start()
            found = _STRUCTURE.search(buf, i)
            if found is None:
                i = n
                break
            char, i = found.group(), found.end()
            if char == '"':
                self.in_string = True
            elif char == "[":
                closers.append("]")
            elif char == "{":
                closers.append("}")
            elif not closers or closers.pop() != char:
                return self.LOST
            elif not closers:
                return i
        self.done = i - start
        return self.LOST if eof else None


class CsvRecords:
    """CSV records as {column: value} dicts, with the line each record starts on (a quoted
    field may span lines) and the record's text as it is in the file. The delimiter is the
    most frequent of , ; and tab in the header."""

    def __init__(self, path: Path):
        self.path = path
        self._file = open_text(path, newline="")
        head = self._file.readline()
        self._file.seek(0)
        self.delimiter = max((",", ";", "\t"), key=head.count) if head.strip() else ","
        self._text: list[str] = []  # the lines the reader took for the record at hand
        self._reader = csv.reader(self._lines(), delimiter=self.delimiter)
        csv.field_size_limit(1 << 30)  # long texts are normal in datasets; the default is 128 KiB
        try:
            self.header = [name.strip() for name in next(self._reader)]
        except StopIteration:
            self._file.close()
            raise TllmError(f"{path.name} is empty: a CSV file needs a header row") from None
        if len(set(self.header)) != len(self.header):
            self._file.close()
            raise TllmError(
                f"{path.name}: the header names a column twice ({', '.join(self.header)})"
            )

    def _lines(self):
        for line in self._file:
            self._text.append(line)
            yield line

    def _taken(self) -> str:
        text = "".join(self._text)
        self._text.clear()
        return text

    def position(self) -> int:
        return self._file.buffer.tell() if not self._file.closed else 0

    def close(self) -> None:
        self._file.close()

    def __iter__(self):
        width, done = len(self.header), self._reader.line_num
        self._text.clear()
        with self._file:
            while True:
                start = done + 1
                try:
                    values = next(self._reader)
                except StopIteration:
                    return
                except csv.Error as error:
                    done = self._reader.line_num
                    yield start, BadRecord("bad csv", str(error)), self._taken()
                    continue
                done = self._reader.line_num
                raw = self._taken()
                if not values:
                    continue  # a blank line
                if len(values) != width:
                    yield (
                        start,
                        BadRecord("bad csv", f"{len(values)} fields where the header has {width}"),
                        raw,
                    )
                    continue
                yield start, dict(zip(self.header, values)), raw


class TextFiles:
    """A .txt/.md file, or every one under a folder (recursively, in name order): one record
    {"text": the whole file} each, `where` its path. Hidden entries (names starting with
    ".") and files of other types are left out and counted; a file or folder that cannot be
    read is one "unreadable" record."""

    SUFFIXES = (".txt", ".md", ".markdown")

    def __init__(self, path: Path):
        self.path = path
        self.skipped = 0  # files in the folder that are not text files
        self.hidden = 0  # hidden files and folders left out (a hidden folder counts once)
        self.done = 0

    def position(self) -> int:
        return self.done

    def _files(self):
        """The text files to read, and the OSError of each folder that could not be listed."""
        if not self.path.is_dir():
            yield self.path
            return
        failed: list[OSError] = []
        for folder, dirs, names in os.walk(self.path, onerror=failed.append):
            yield from failed
            failed.clear()
            self.hidden += sum(d.startswith(".") for d in dirs)
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if name.startswith("."):
                    self.hidden += 1
                elif not name.lower().endswith(self.SUFFIXES):
                    self.skipped += 1
                else:
                    yield Path(folder) / name
        yield from failed

    def _where(self, file: Path) -> str:
        if file == self.path or not self.path.is_dir():
            return str(file)
        return str(file.relative_to(self.path))

    def __iter__(self):
        for file in self._files():
            if isinstance(file, OSError):
                yield (
                    self._where(Path(file.filename)),
                    BadRecord("unreadable", f"cannot list this folder: {file.strerror}"),
                    None,
                )
                continue
            where = self._where(file)
            try:
                data = file.read_bytes()
            except OSError as error:
                yield where, BadRecord("unreadable", _why_unreadable(file, error)), None
                continue
            self.done += len(data)
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError as error:
                why = f"not UTF-8 text ({error.reason} at byte {error.start + 1})"
                yield where, BadRecord("bad encoding", why), data.decode("utf-8-sig", "replace")
                continue
            yield where, {"text": text}, text


def _why_unreadable(file: Path, error: OSError) -> str:
    if file.is_symlink() and not file.exists():
        return f"a link to {os.readlink(file)}, which does not exist"
    return f"cannot read {file}: {error.strerror or error}"
