"""The alpaca -> chat import of JSON Lines done a block of lines at a time with pyarrow,
rather than a record at a time in Python (which capped a million-row import at about two
thirds of the speed of `datasets.load_dataset("json")`).

Each block of about BLOCK bytes, cut at a line end, is parsed by pyarrow's JSON reader;
its instruction, input and output columns are checked, JSON-escaped and joined into
canonical chat rows with pyarrow.compute, and the joined strings' data buffer is the
block's lines of data.jsonl. The output is the per-record path's, byte for byte
(`chat_formats.alpaca_line` serializes as orjson does; this module repeats that):

- a block the vectorized path cannot vouch for goes to the per-record path whole: a line
  that does not start with "{" and end with "}" or "}\\r" (blank lines, leading spaces),
  a raw control byte, anything pyarrow refuses (bad JSON or encoding, a key twice, a
  column whose type changes), a row count other than the line count, a "system" or
  "history" key, instruction/input/output that are not all strings, or another key
  holding anything but strings, booleans, integers or null (floats could be NaN, which
  orjson refuses);
- a row the vectorized path will not build goes to the per-record path alone, in its
  place: a missing, null or blank instruction or output (rejected there, with its reason),
  an instruction mentioning "human" (maybe a BELLE dialogue), or text holding a control
  character orjson writes as \\u00XX.

Only files of jsonl.ARROW_FROM bytes or more come here: loading pyarrow costs a few tenths
of a second. Python's `str.isspace` decides what is blank, so the whitespace below is its list.

Measured on the benchmark's million rows (2 shared CPUs): about 2.6-3.5 s of CPU time
against 4.3-5.5 s for the per-record loop (one process or split over several), and the
parse and the writing overlap in two threads (see `import_alpaca`).
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from .chat_formats import _ASSISTANT, _END, _USER, alpaca_line
from .jsonl import import_batch
from .sources import BOM

BLOCK = 2 << 20  # bytes parsed at a time: two blocks are in hand at once, memory stays flat
TEXT = ("instruction", "input", "output")
CONTEXT = ("system", "history")  # keys that change the row: the per-record path builds it
OTHER_TYPES = (pa.string(), pa.bool_(), pa.null(), pa.int64())
# Every character for which str.isspace() is true (the test checks this against Python).
PY_SPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
    "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# Control characters orjson writes as \u00XX (the others have short escapes below).
RARE_CONTROL = "[\\x00-\\x07\\x0b\\x0e-\\x1f]"
ESCAPES = (
    ("\\", "\\\\"),
    ('"', '\\"'),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\t", "\\t"),
    ("\b", "\\b"),
    ("\f", "\\f"),
)


def _text(data: bytes) -> pa.StringScalar:
    """An Arrow string scalar made without pa.scalar(), which imports pandas (a fifth of a
    second and tens of megabytes) to check whether its argument is a pandas object."""
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int32))
    return pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(data)])[0]


OPEN, MIDDLE, CLOSE = (
    _text(part) for part in (_USER + b'"', b'"' + _ASSISTANT + b'"', b'"' + _END)
)
TWO_NEWLINES, NOTHING = _text(b"\\n\\n"), _text(b"")


def import_alpaca(
    path: Path, add_line, reject, progress=None, start=0, end=None, add_block=None
) -> tuple[int, int]:
    """Import the alpaca JSON Lines in [start, end) of `path` as chat rows, like
    `jsonl.import_lines` with `chat_formats.alpaca_line`. Blocks of lines go to
    `add_block(data, rows)` when given (DatasetWriter.add_block: one call a block), else
    line by line to `add_line`. Returns (lines read, rows kept).

    Two threads share the work: this one reads and parses a block while the other builds,
    writes (and the writer hashes) the rows of the block before. Both mostly run code
    that releases the GIL, so on two free CPUs each takes about half of the time. Only
    the second thread adds rows and rejects them, so both stay in order; one block at
    most waits for it, so memory stays flat."""
    if add_block is None:

        def add_block(data, _rows: int) -> None:
            for row in io.BytesIO(data):
                add_line(row)

    line = kept = 0
    pool = pa.default_memory_pool()
    # malloc's pool gives the blocks' memory back; Arrow's default one kept 50 MB more.
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="tllm-rows") as rows_thread:
            building = None
            for block, at in _blocks(path, start, end):
                if line == 0 and start == 0:
                    block = block.removeprefix(BOM)
                if not block:  # a file of a byte order mark: one line, as import_lines counts
                    line += 1
                    continue
                ends, controls = _line_ends(block)
                table = _parse(block, ends, controls)
                if building is not None:
                    kept += building.result()
                building = rows_thread.submit(
                    _import_block, block, line, ends, table, add_block, add_line, reject
                )
                line += len(ends)
                if progress is not None:
                    progress(at - start)
            if building is not None:
                kept += building.result()
    finally:
        pa.set_memory_pool(pool)
    return line, kept


def _blocks(path: Path, start: int, end: int | None):
    """(block, file position after it): the range's bytes about BLOCK at a time, each
    ending at a line end (or the range's end). The bytes after a block's last line end
    are read again with the next block, rather than copied."""
    with open(path, "rb", buffering=0) as f:
        at = start
        while end is None or at < end:
            f.seek(at)
            want = BLOCK if end is None else min(BLOCK, end - at)
            chunk = f.read(want)
            if not chunk:
                return
            while len(chunk) == want and b"\n" not in chunk and (end is None or at + want < end):
                want *= 2  # one line longer than the block: read on
                f.seek(at)
                chunk = f.read(want if end is None else min(want, end - at))
            last = len(chunk) < want or (end is not None and at + len(chunk) >= end)
            cut = len(chunk) if last else chunk.rfind(b"\n") + 1
            at += cut
            yield (chunk if cut == len(chunk) else chunk[:cut]), at


def _import_block(
    block: bytes, line: int, ends: np.ndarray, table: pa.Table | None, add_block, add_line, reject
) -> int:
    """Add the rows of a block whose first line is line `line + 1` (read by `_parse`
    into `table`, or None for the per-record path); returns how many were kept."""
    if table is None:
        _, kept = import_batch(
            io.BytesIO(block).readlines(), line, 0, alpaca_line, add_line, reject
        )
        return kept
    rows, per_record = _chat_rows(table, block, ends)
    offsets = _offsets(rows)
    data = memoryview(rows.buffers()[2]) if rows.buffers()[2] is not None else memoryview(b"")
    kept, done = 0, 0  # rows so far; rows so far already added
    for i in per_record:
        if i > done:
            add_block(data[offsets[done] : offsets[i]], i - done)
            kept += i - done
        first = 0 if i == 0 else int(ends[i - 1]) + 1
        _, got = import_batch(
            [block[first : int(ends[i]) + 1]], line + i, 0, alpaca_line, add_line, reject
        )
        kept += got
        done = i + 1
    if len(rows) > done:
        add_block(data[offsets[done] : offsets[-1]], len(rows) - done)
        kept += len(rows) - done
    return kept


def _line_ends(block: bytes) -> tuple[np.ndarray, int]:
    """The position of each line's last byte ("\\n", or the block's last byte), and how many
    other control bytes the block holds (found in the same pass)."""
    raw = np.frombuffer(block, np.uint8)
    controls = np.flatnonzero(raw < 0x20)
    ends = controls[raw[controls] == 10]
    others = len(controls) - len(ends)
    if not block.endswith(b"\n"):
        ends = np.append(ends, len(block) - 1)
    return ends, others


def _parse(block: bytes, ends: np.ndarray, controls: int) -> pa.Table | None:
    """The block as a table of one row a line, or None when the per-record path must read it
    (`controls`: how many control bytes other than "\\n" it holds)."""
    raw = np.frombuffer(block, np.uint8)
    last = ends - (raw[ends] == 10)  # each line's last byte before its "\n"
    crlf = raw[last] == 13
    last -= crlf  # and before its "\r\n"
    if (
        raw[0] != ord("{")
        or controls != np.count_nonzero(crlf)
        or not (raw[last] == ord("}")).all()
        or not (raw[ends[:-1] + 1] == ord("{")).all()
    ):
        return None
    try:
        # One chunk (no copy to join chunks); no threads: they did not make it faster on
        # two CPUs, and took more memory.
        options = pj.ReadOptions(use_threads=False, block_size=len(block) + 1)
        table = pj.read_json(io.BytesIO(block), read_options=options)
        table.validate(full=True)  # pyarrow's parser lets text that is not UTF-8 through
        names = table.column_names  # (a key that is not UTF-8 fails here)
    except Exception:  # pyarrow refused something: the per-record path says what
        return None
    if table.num_rows != len(ends) or len(set(names)) != len(names):
        return None
    for field in table.schema:
        if field.name in CONTEXT:
            return None
        allowed = (pa.string(), pa.null()) if field.name in TEXT else OTHER_TYPES
        if field.type not in allowed:
            return None
    return table


def _chat_rows(table: pa.Table, block: bytes, ends: np.ndarray) -> tuple[pa.StringArray, list[int]]:
    """Each row's chat line (null for the rows left to the per-record path), and those rows."""
    n = table.num_rows
    instruction, extra, output = (_column(table, name, n) for name in TEXT)
    per_record = _blank(instruction) | _blank(output)
    # Every BELLE dialogue says "Human:" (chat_formats.is_belle_dialogue), and more rows.
    per_record |= _true(pc.match_substring(instruction, "human", ignore_case=True))
    with_input = ~_blank(extra)
    escaped = _escaped_rows(block, ends)
    if len(escaped):
        mask = np.zeros(n, dtype=bool)
        mask[escaped] = True
        mask, at = _bools(mask), _ints(escaped)
        texts = []
        for column in (instruction, extra, output):
            some = column.take(at)
            per_record[escaped[_true(pc.match_substring_regex(some, RARE_CONTROL))]] = True
            texts.append(pc.replace_with_mask(column, mask, _escape(some)))
        instruction, extra, output = texts
    both = pc.binary_join_element_wise(instruction, extra, TWO_NEWLINES)
    user = pc.if_else(_bools(with_input), both, instruction)
    if per_record.any():
        user = pc.if_else(_bools(per_record), pa.nulls(n, pa.string()), user)
    rows = pc.binary_join_element_wise(OPEN, user, MIDDLE, output, CLOSE, NOTHING)
    return rows, np.flatnonzero(per_record).tolist()


def _column(table: pa.Table, name: str, n: int) -> pa.StringArray:
    if name not in table.column_names:
        return pa.nulls(n, pa.string())
    return table.column(name).combine_chunks().cast(pa.string())


# numpy arrays to Arrow's without pa.array() (which imports pandas, see _text).
def _bools(mask: np.ndarray) -> pa.BooleanArray:
    bits = pa.py_buffer(np.packbits(mask, bitorder="little"))
    return pa.Array.from_buffers(pa.bool_(), len(mask), [None, bits])


def _ints(values: np.ndarray) -> pa.Int64Array:
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _true(marks: pa.BooleanArray) -> np.ndarray:
    """A boolean array as numpy's, nulls false."""
    found = _bits(marks.buffers()[1], marks.offset, len(marks))
    return (
        found & _bits(marks.buffers()[0], marks.offset, len(marks)) if marks.null_count else found
    )


def _bits(bitmap: pa.Buffer | None, offset: int, n: int) -> np.ndarray:
    if bitmap is None:  # a validity bitmap that is left out: all valid
        return np.ones(n, dtype=bool)
    bits = np.unpackbits(np.frombuffer(bitmap, np.uint8), bitorder="little")
    return bits[offset : offset + n].view(bool)


def _blank(texts: pa.StringArray) -> np.ndarray:
    """Null, empty or whitespace only, as Python's `not s or s.isspace()` says. Most texts
    start with a printable ASCII character (read from the data buffer with numpy); only
    the others are trimmed of Python's whitespace to see whether anything is left."""
    n = len(texts)
    if texts.null_count == n:
        return np.ones(n, dtype=bool)
    offsets = _offsets(texts)
    data = np.frombuffer(texts.buffers()[2], np.uint8)
    first = data[np.minimum(offsets[:-1], len(data) - 1)] if len(data) else np.zeros(n, np.uint8)
    blank = ~((offsets[1:] > offsets[:-1]) & (first > 0x20) & (first < 0x7F))
    valid = (
        _bits(texts.buffers()[0], texts.offset, n) if texts.null_count else np.ones(n, dtype=bool)
    )
    unsure = np.flatnonzero(blank & valid)
    if len(unsure):
        left = pc.utf8_ltrim(texts.take(_ints(unsure)), PY_SPACE)
        blank[unsure] = np.diff(_offsets(left)) == 0
    return blank | ~valid


def _offsets(texts: pa.StringArray) -> np.ndarray:
    """Where each string starts in the data buffer, and where the last one ends."""
    return np.frombuffer(texts.buffers()[1], np.int32)[texts.offset : texts.offset + len(texts) + 1]


def _escaped_rows(block: bytes, ends: np.ndarray) -> np.ndarray:
    """The rows whose source line holds a backslash: raw control bytes and unescaped quotes
    are not JSON, so only these rows' texts can hold a character to escape."""
    if block.find(b"\\") < 0:
        return np.empty(0, dtype=np.int64)
    at = np.flatnonzero(np.frombuffer(block, np.uint8) == ord("\\"))
    return np.unique(np.searchsorted(ends, at))


def _escape(texts: pa.StringArray) -> pa.StringArray:
    """JSON string escapes as orjson writes them (rare control characters excepted)."""
    for char, escape in ESCAPES:
        texts = pc.replace_substring(texts, char, escape)
    return texts
