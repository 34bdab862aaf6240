"""Importing JSON Lines, the common case: the hot loop, and the same loop run by several
processes on a big file.

The loop is lean on purpose (the benchmark's million rows go through it): orjson, no
function call per row beyond the format's reader, no exception on good rows, each row
serialized once, every line counted so rejections carry their line number.

One process was not enough: on a 2-CPU machine it imported the benchmark's million alpaca
rows at 0.7-0.8x the rows per second of `datasets.load_dataset("json")`, which parses with
several threads. So a big file is cut into byte ranges at line starts. This process
imports the first range straight into the output while helper processes
(`python -m together_llm.data.importing.jsonl JOB`) import the others into part files beside the
dataset; the parts are then appended in order, and the helpers' rejections are passed on
with their line numbers shifted by the lines before their range. The result is what one
process would write, byte for byte.

A big alpaca file (the benchmark's) is read by `jsonl_arrow` instead, a block of lines at
a time with pyarrow, in this process only: it writes the same bytes with less CPU time
than the per-record loop split over processes (that loop stays for what it cannot vouch for).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

from ...errors import TllmError
from ..kinds import RowError
from .chat_formats import alpaca_line
from .formats import line_converter
from .sources import BOM

BATCH = 1 << 20  # bytes read at a time; progress is reported per batch
PARALLEL_FROM = 32 << 20  # files from this size are imported by several processes
MAX_PROCESSES = 4
ARROW_FROM = 16 << 20  # alpaca files from this size are read by jsonl_arrow


def import_lines(
    path: Path,
    to_line,
    add_line,
    reject,
    progress=None,
    start=0,
    end=None,
    flush=None,
    add_block=None,
):
    """Import the lines of `path` in the byte range [start, end) (both at line starts);
    `to_line` turns a record into its canonical row's JSON line or raises RowError;
    `flush()`, when given, runs after each batch of lines; `add_block(data, rows)`, when
    given, takes many rows' lines at once (the vectorized alpaca reader uses it).
    Returns (lines read, rows kept)."""
    if to_line is alpaca_line and flush is None and fast_alpaca_ok(path):
        from .jsonl_arrow import import_alpaca  # pyarrow is loaded only for this path

        return import_alpaca(path, add_line, reject, progress, start, end, add_block)
    line = kept = 0
    with open(path, "rb") as f:
        f.seek(start)
        while batch := f.readlines(BATCH):
            if line == 0 and start == 0:
                batch[0] = batch[0].removeprefix(BOM)
            if end is not None and (over := f.tell() - end) > 0:
                while over > 0:  # the range ends inside this batch, at a line start
                    over -= len(batch.pop())
            line, kept = import_batch(batch, line, kept, to_line, add_line, reject)
            if flush is not None:
                flush()
            at = f.tell() if end is None else min(f.tell(), end)
            if progress is not None:
                progress(at - start)
            if at == end:
                break
    return line, kept


def import_batch(
    batch: list[bytes], line: int, kept: int, to_line, add_line, reject
) -> tuple[int, int]:
    """Import consecutive raw lines, the first being line `line + 1`, one record at a time.
    Returns (the last line's number, rows kept so far)."""
    loads = orjson.loads
    DecodeError = orjson.JSONDecodeError
    for raw in batch:
        line += 1
        try:
            record = loads(raw)
        except DecodeError as error:
            if raw.strip():  # blank lines are not rows
                reject(line, *unparsed(raw, error), raw)
            continue
        if type(record) is not dict:
            reject(
                line,
                "not an object",
                f"a row must be a JSON object, not {type(record).__name__}",
                raw,
            )
            continue
        try:
            row = to_line(record)
        except RowError as error:
            reject(line, error.reason, error.detail, raw)
            continue
        add_line(row)
        kept += 1
    return line, kept


def fast_alpaca_ok(path: Path) -> bool:
    """Whether the vectorized alpaca reader should import this file: it is big enough to
    repay loading pyarrow (a few tenths of a second), and pyarrow is there. TLLM_ARROW=0
    turns it off, to compare the two paths."""
    if os.environ.get("TLLM_ARROW", "1") == "0" or path.stat().st_size < ARROW_FROM:
        return False

    return importlib.util.find_spec("pyarrow") is not None


def unparsed(raw: bytes, error) -> tuple[str, str]:
    """The reason and detail for a line orjson could not parse: "bad encoding" for bytes
    that are not UTF-8 or an escaped lone surrogate, as the other readers say, else "bad json"."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return "bad encoding", f"not UTF-8 text ({bad.reason} at byte {bad.start + 1})"
    if "surrogate" in error.msg:
        return "bad encoding", f"{error.msg} at character {error.pos + 1}"
    return "bad json", f"{error.msg} at character {error.pos + 1}"


def processes_for(path: Path) -> int:
    """How many processes should import this file: one unless it is big and CPUs are free."""
    size = path.stat().st_size
    if size < PARALLEL_FROM:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cpus, MAX_PROCESSES, 1 + size // PARALLEL_FROM))


def line_ranges(path: Path, parts: int) -> list[tuple[int, int]]:
    """`parts` byte ranges of about equal size covering the file, cut at line starts.
    (Equal shares measured best: this process's extra work, appending the parts, is
    about what a helper spends starting.)"""
    size = path.stat().st_size
    cuts = [0]
    with open(path, "rb") as f:
        for i in range(1, parts):
            f.seek(max(size * i // parts, cuts[-1]))
            f.readline()  # to the start of the next line
            cuts.append(min(f.tell(), size))
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a or a == 0]


def import_lines_parallel(
    plan,
    add_line,
    add_part,
    reject,
    progress,
    processes: int,
    part_dir: Path | None,
    add_block=None,
) -> int:
    """Import with `processes` processes; `add_part(path or None, rows)` appends a helper's
    rows in order (None when only checking). Returns the number of lines read.
    A big alpaca file goes to the vectorized reader in this process instead: it takes less
    CPU time than the split, and its writing thread keeps a second CPU busy."""
    if plan.to_line is alpaca_line and fast_alpaca_ok(plan.path):
        return import_lines(
            plan.path, plan.to_line, add_line, reject, progress, add_block=add_block
        )[0]
    ranges = line_ranges(plan.path, processes)
    helpers = []
    try:
        for start, end in ranges[1:]:
            data = _part_file(part_dir, "data") if part_dir is not None else None
            rejected = _part_file(part_dir or Path(tempfile.gettempdir()), "rejected")
            job = [str(plan.path), start, end, plan.format, plan.kind, plan.columns, data, rejected]
            helper = subprocess.Popen(
                [sys.executable, "-m", __name__, orjson.dumps(job).decode()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            helpers.append((helper, data, rejected))
        own_start, own_end = ranges[0]
        scale = plan.path.stat().st_size / max(1, own_end - own_start)

        def own_progress(done: int) -> None:  # the helpers are taken to keep the same pace
            progress(int(done * scale))

        lines, _ = import_lines(
            plan.path,
            plan.to_line,
            add_line,
            reject,
            own_progress if progress else None,
            own_start,
            own_end,
        )
        for helper, data, rejected in helpers:
            said, complaint = helper.communicate()
            if helper.returncode != 0:
                last = (complaint.decode(errors="replace").strip().splitlines() or ["no message"])[
                    -1
                ]
                raise TllmError(
                    f"a helper process importing part of {plan.path.name} failed "
                    f"(exit code {helper.returncode}): {last}"
                )
            part_lines, part_rows = orjson.loads(said)
            add_part(Path(data) if data else None, part_rows)
            with open(rejected, "rb") as f:
                for entry in f:
                    where, reason, detail, raw = orjson.loads(entry)
                    reject(where + lines, reason, detail, raw)
            lines += part_lines
        return lines
    finally:
        for helper, data, rejected in helpers:
            if helper.poll() is None:
                helper.kill()
                helper.communicate()
            for part in (data, rejected):
                if part:
                    Path(part).unlink(missing_ok=True)


def _part_file(folder: Path, what: str) -> str:
    handle, name = tempfile.mkstemp(prefix=f".part-{what}-", suffix=".jsonl", dir=folder)
    os.close(handle)
    return name


def _helper(job: list) -> None:
    """A helper process: import one byte range into part files, print (lines, rows)."""

    path, start, end, fmt, kind, columns, data_path, rejected_path = job
    to_line = line_converter(fmt, kind, columns)
    with (
        open(data_path or os.devnull, "wb", buffering=1 << 20) as data,
        open(rejected_path, "wb", buffering=1 << 16) as rejected,
    ):

        def reject(where, reason, detail, raw):
            rejected.write(
                orjson.dumps([where, reason, detail, raw.decode("utf-8", "replace")]) + b"\n"
            )

        pending: list[bytes] = []  # written a batch at a time, as DatasetWriter does

        def flush() -> None:
            if data_path:
                data.write(b"".join(pending))
            pending.clear()

        lines, rows = import_lines(
            Path(path), to_line, pending.append, reject, None, start, end, flush
        )
    sys.stdout.write(orjson.dumps([lines, rows]).decode())


if __name__ == "__main__":
    _helper(orjson.loads(sys.argv[1]))
